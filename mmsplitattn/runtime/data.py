"""Dataset checks for the tools: paths that exist, files that parse."""
import os
import os.path as osp


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


def check_dataset_paths(cfg, loaders) -> None:
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
