"""One helper per concern for the tools and the tests: configs, models."""
import argparse
import ast
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

# default_scope -> the task name the tools use
TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` merged with ``cfg_options``; a syntax error is
    named with its line and column (MMEngine's own error says "<unknown>")."""
    if path.endswith('.py') and osp.isfile(path):  # else MMEngine names the missing file
        with open(path, encoding='utf-8') as f:
            try:
                ast.parse(f.read(), filename=path)
            except SyntaxError as e:
                raise SyntaxError(f'config file {path!r}, line {e.lineno}, column {e.offset}: '
                                  f'{e.msg}: {(e.text or "").strip()!r}') from None
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(cfg_options or {})
    return cfg


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction`` that names a malformed ``key=value`` pair."""

    def __call__(self, parser, namespace, values, option_string=None):
        for pair in values:
            key, sep, value = pair.partition('=')
            if not (key and sep and value):
                raise argparse.ArgumentError(self, f'{pair!r} is not key=value with a non-empty '
                                             'key and value, e.g. train_cfg.max_epochs=12')
        super().__call__(parser, namespace, values, option_string)


def tool_parser(description: str) -> argparse.ArgumentParser:
    """The arguments tools/train.py and tools/test.py share (``config`` first)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='the dir to save logs, metrics and models')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help='load the matching tensors of a checkpoint that does not fit the '
                        'model instead of stopping (safety_cfg.allow_partial_load)')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not check the datasets first (safety_cfg.data_check)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings: key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def tool_config(args) -> Config:
    """The config of :func:`tool_parser`'s ``args``, for ``mmsplitattn.SafeRunner``
    unless it names its own ``runner_type``."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.setdefault('safety_cfg', {})  # returns the dict before Config converts it
    safety = cfg.safety_cfg
    if args.skip_data_check:
        safety['data_check'] = False
    if args.allow_partial_load:
        safety['allow_partial_load'] = True
    cfg.setdefault('runner_type', 'mmsplitattn.SafeRunner')
    return cfg


def task_of(cfg, tasks=('det', 'seg', 'cls')) -> str:
    """'det', 'seg' or 'cls' from the config's ``default_scope``."""
    allowed = {s: t for s, t in TASKS.items() if t in tasks}
    scope = cfg.get('default_scope', None)
    if scope not in allowed:
        raise ValueError(f'config default_scope must be {" or ".join(map(repr, allowed))}, '
                         f'got {scope!r}')
    return allowed[scope]


def unwrap_model(model):
    """The model inside DDP-style wrappers and test-time-augmentation models."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def build_model(cfg):
    """``cfg.model`` built in its ``default_scope``'s registry, as the Runner does."""
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        return MODELS.build(cfg.model)
