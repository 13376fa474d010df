"""What ``tools/train.py`` and ``tools/test.py`` do before handing a config
to MMEngine's Runner: up-front checks with clear messages, and the
adjustments a CPU-only or torch >= 2.6 machine needs."""
import os
import os.path as osp
import zipfile

import torch


def prepare_torch_load():
    """Let MMEngine 0.10 resume/test from its own checkpoints on torch >= 2.6.

    Its checkpoints pickle MMEngine objects (message hubs, history buffers),
    which ``torch.load``'s ``weights_only=True`` default refuses. The variable
    only applies where a call site leaves ``weights_only`` unset.
    """
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


def load_config(path, launcher='none', cfg_options=None, work_dir=None):
    """The config at ``path`` with the tools' common overrides applied.

    ``work_dir`` defaults to the config's, else ``./work_dirs/<config name>``.
    Returns (cfg, task) with task 'det' or 'seg'.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
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


def build_runner(cfg):
    """MMEngine's Runner, or the config's own ``runner_type``."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def task_of(cfg):
    """'det' or 'seg' from the config's ``default_scope``."""
    scope = cfg.get('default_scope', None)
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f"config default_scope must be 'mmdet' or 'mmseg', got {scope!r}")
    return scope[2:]


def adapt_cfg_to_device(cfg):
    """Make a distributed launch work without CUDA: gloo, CPU-side DDP.

    MMEngine's ``init_dist`` always calls ``torch.cuda.set_device``, so on a
    CPU-only machine the process group (gloo, from torchrun's environment)
    is created here and the Runner finds it ready.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} needs CUDA; without GPUs launch '
                           'through torchrun (tools/dist_train.sh, --launcher pytorch)')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def _dataset_paths(dataset):
    """(data_root, [required files/dirs]) of a (possibly wrapped) dataset cfg."""
    while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, ...
        dataset = dataset['dataset']
    if 'datasets' in dataset:  # ConcatDataset
        return [p for d in dataset['datasets'] for p in _dataset_paths(d)]
    root = dataset.get('data_root', '') or ''
    paths = [root] if root else []
    if dataset.get('ann_file'):
        paths.append(osp.join(root, dataset['ann_file']))
    for prefix in (dataset.get('data_prefix') or {}).values():
        if isinstance(prefix, str) and prefix:
            paths.append(osp.join(root, prefix))
    return paths


def check_dataset_paths(cfg, loaders):
    """Raise FileNotFoundError naming the first missing dataset path.

    Args:
        loaders (list[str]): e.g. ``['train_dataloader', 'val_dataloader']``.
    """
    for loader in loaders:
        if cfg.get(loader) is None:
            continue
        for path in _dataset_paths(cfg[loader]['dataset']):
            if not osp.exists(path):
                raise FileNotFoundError(
                    f'{loader}: dataset path {path!r} does not exist (working '
                    f'directory {os.getcwd()!r}). Prepare the dataset as the '
                    "README's 'Data' section shows, or point the config at it, e.g. "
                    f'--cfg-options {loader}.dataset.data_root=/path/to/data/')


def check_checkpoint(path):
    """Raise a clear error if ``path`` is missing or not a readable checkpoint.

    URLs and ``open-mmlab://`` style names are left to MMEngine.
    """
    if '://' in path:
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        if zipfile.is_zipfile(path):  # torch >= 1.6 format: check every CRC
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise ValueError(f'member {bad!r} fails its CRC check')
        else:  # legacy pickle format, or a truncated zip
            torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(
            f'checkpoint {path!r} is corrupt or not a PyTorch checkpoint '
            f'({type(e).__name__}: {e}); it may be truncated by an interrupted '
            'copy or save') from None
