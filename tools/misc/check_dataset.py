"""Check the data a config trains and tests on, every file of it.

    python tools/misc/check_dataset.py CONFIG [--loaders train_dataloader ...]
        [--no-decode] [--cfg-options k=v ...]

Builds the dataset of each loader as training does and checks what it loads
(:func:`mmsplitattn.engine.data.check_dataset`, which training runs without
reading the files): the files its entries name exist, are not empty and
decode (``--no-decode``: only their headers are read), label maps have their
image's size and values within the classes, instance labels, boxes and masks
are sane, no dataset is empty. Also counts the annotations the dataset class
drops. Prints every bad file by kind; exits 1 if any problem would stop or
corrupt a run.
"""
import argparse
import sys

from mmengine.registry import DATASETS, DefaultScope

from mmsplitattn.engine.data import DatasetReport, check_dataset, leaves, load_problem
from mmsplitattn.engine.utils import CfgOptionsAction, load_config

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check the dataset files of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--loaders', nargs='+', choices=LOADERS, default=list(LOADERS),
                        help='which dataloaders to check (default: all the config has)')
    parser.add_argument('--no-decode', action='store_true',
                        help='read only the file headers (image sizes), no decoding')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def lazy(cfg: dict) -> dict:
    """``cfg`` and the dataset configs it holds with ``lazy_init``, the leaves unserialised."""
    cfg = dict(cfg, lazy_init=True)
    if isinstance(cfg.get('dataset'), dict):
        cfg['dataset'] = lazy(cfg['dataset'])
    if isinstance(cfg.get('datasets'), (list, tuple)):
        cfg['datasets'] = [lazy(d) for d in cfg['datasets']]
    if 'dataset' not in cfg and 'datasets' not in cfg:
        cfg['serialize_data'] = False
    return cfg


def count_dropped(leaf, loader: str, report: DatasetReport) -> None:
    """Count the raw annotations (mmdet's ``raw_ann_info``) ``leaf.parse_data_info``
    drops, e.g. of a category not in the classes."""
    parse = leaf.parse_data_info

    def parse_data_info(raw):
        info = parse(raw)
        anns = raw.get('raw_ann_info') if isinstance(raw, dict) else None
        if isinstance(info, dict) and len(anns or ()) > len(info.get('instances', ())):
            report.add(loader, 'annotations dropped by the dataset class (category not in the '
                       'classes, empty box, ignore flag)', f'{info.get("img_path")}: '
                       f'{len(anns) - len(info["instances"])} of {len(anns)} (category_id '
                       f'{sorted({a.get("category_id") for a in anns})})', fatal=False)
        return info

    leaf.parse_data_info = parse_data_info


def check(cfg, loaders=LOADERS, read_headers: bool = True,
          decode: bool = True) -> DatasetReport:
    """Build the dataset of each of ``loaders`` in ``cfg`` (in its ``default_scope``;
    one that two loaders share, once), load it and check what it loaded."""
    report, seen = DatasetReport(), {}
    for loader in loaders:
        dataset_cfg = (cfg.get(loader) or {}).get('dataset')
        if dataset_cfg is None or repr(dataset_cfg) in seen:
            if dataset_cfg is not None:
                report.checked[loader] = f'the same dataset as {seen[repr(dataset_cfg)]}'
            continue
        seen[repr(dataset_cfg)] = loader
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            leaf = None
            try:
                try:
                    dataset = DATASETS.build(lazy(dataset_cfg))
                except TypeError:  # a class without lazy_init/serialize_data: as configured
                    dataset = DATASETS.build(dataset_cfg)
                for leaf in leaves(dataset):
                    if hasattr(leaf, 'full_init'):
                        count_dropped(leaf, loader, report)
                        leaf.full_init()
            except Exception as e:  # noqa: BLE001 - named with its loader
                report.add(loader, 'dataset that does not load',
                           load_problem(loader, e, getattr(leaf, 'ann_file', None), dataset_cfg))
                continue
            check_dataset(dataset, loader, report, read_headers, decode)
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    report = check(cfg, args.loaders, decode=not args.no_decode)
    print(report.format(args.config, limit=None))
    if not report.ok:
        print('some problems above would stop or corrupt training/testing', file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
