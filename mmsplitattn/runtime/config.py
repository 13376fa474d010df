"""Loading a config for the tools: syntax errors named, the task decided by
``default_scope``, the tools' common overrides applied."""
import ast
import os
import os.path as osp
from typing import Optional, Sequence

# default_scope -> the task name the tools use
TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}


def prepare_torch_load() -> None:
    """Let MMEngine 0.10 resume/test from its own checkpoints on torch >= 2.6.

    Its checkpoints pickle MMEngine objects (message hubs, history buffers),
    which ``torch.load``'s ``weights_only=True`` default refuses. The variable
    only applies where a call site leaves ``weights_only`` unset.
    """
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


def check_config_syntax(path: str) -> None:
    """Raise SyntaxError naming ``path``, the line and the column.

    MMEngine parses the top-level file once without its name, so its own
    error reads ``File "<unknown>"``.
    """
    if not path.endswith('.py'):
        return
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        ast.parse(source, filename=path)
    except SyntaxError as e:
        line = (e.text or '').rstrip('\n')
        raise SyntaxError(f'config file {path!r}, line {e.lineno}, column {e.offset}: '
                          f'{e.msg}: {line.strip()!r}') from None


def load_config(path: str, launcher: str = 'none', cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None):
    """The config at ``path`` with the tools' common overrides applied.

    ``work_dir`` defaults to the config's, else ``./work_dirs/<config name>``.
    Returns (cfg, task) with task 'det', 'seg' or 'cls'.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    check_config_syntax(path)
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    task = task_of(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg, task


def task_of(cfg, tasks: Sequence[str] = ('det', 'seg', 'cls')) -> str:
    """'det', 'seg' or 'cls' from the config's ``default_scope`` (mmdet, mmseg,
    mmpretrain), restricted to ``tasks``."""
    scope = cfg.get('default_scope', None)
    allowed = {s: t for s, t in TASKS.items() if t in tasks}
    if scope not in allowed:
        names = ' or '.join(repr(s) for s in allowed)
        raise ValueError(f'config default_scope must be {names}, got {scope!r}')
    return allowed[scope]


def unwrap_model(model):
    """The model inside a DDP-style wrapper or a test-time-augmentation model,
    as MMEngine loads checkpoints into it."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model

