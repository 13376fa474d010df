"""The hooks and checks ``tools/train.py`` and ``tools/test.py`` add to a config."""
import os

from .data import check_dataset_cfg


def add_custom_hook(cfg, hook_type: str, **kwargs) -> None:
    """Append ``dict(type=hook_type, **kwargs)`` to ``custom_hooks`` unless the
    config has a hook of that class already (its settings win)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    name = hook_type.split('.')[-1]
    if not any(str(h.get('type', '')).split('.')[-1] == name for h in hooks):
        hooks.append(dict(type=hook_type, **kwargs))
    cfg.custom_hooks = hooks


def use_safe_checkpoint_hook(cfg) -> None:
    """MMEngine's CheckpointHook -> ``mmsplitattn.SafeCheckpointHook`` (same
    arguments): atomic writes, rotation after the new file is complete."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook'):
        hook['type'] = 'mmsplitattn.SafeCheckpointHook'


def check_dataset_contents(cfg, loaders) -> None:
    """The cheap part of ``tools/misc/check_dataset.py`` for ``loaders``:
    annotation files parse, categories and polygons are sane, labels have
    their images' size (file headers; no decoding). Problems that would stop
    or corrupt the run raise ValueError; the rest are logged as a warning
    with counts (rank 0)."""
    from mmengine.logging import print_log
    fatal, warnings, seen = [], [], set()
    for loader in loaders:
        if cfg.get(loader) is None:
            continue
        dataset = cfg[loader]['dataset']
        key = repr(dataset)
        if key in seen:  # val and test are often the same dataset
            continue
        seen.add(key)
        report = check_dataset_cfg(dataset, loader)
        fatal += [f'{loader}:{line}' for line in report.lines(report.fatal)]
        warnings += [f'{loader}:{line}' for line in report.lines()
                     if line not in report.lines(report.fatal)]
    config = cfg.filename or 'the config'
    if fatal:
        raise ValueError(
            f'the dataset of {config} has problems that would stop or corrupt the run:\n'
            + '\n'.join(fatal + warnings)
            + f'\nFix them (tools/misc/check_dataset.py {config} checks every file), or '
            'skip this check with --skip-data-check.')
    if warnings and os.environ.get('RANK', '0') == '0':
        print_log(f'dataset check of {config}: mmdet/mmseg skip or ignore these '
                  'silently:\n' + '\n'.join(warnings) + '\n(tools/misc/check_dataset.py '
                  'checks every file)', logger='current', level=30)
