"""One helper per concern for the tools and the tests: configs, models."""
import argparse
import ast
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction

# default_scope -> the task name the tools use
TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` merged with ``cfg_options``; a missing file or a
    syntax error is named with its line (MMEngine's own error says "<unknown>")."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    if path.endswith('.py'):
        with open(path, encoding='utf-8') as f:
            source = f.read()
        try:
            ast.parse(source, filename=path)
        except SyntaxError as e:
            raise SyntaxError(f'config file {path!r}, line {e.lineno}, column {e.offset}: '
                              f'{e.msg}: {(e.text or "").strip()!r}') from None
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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
