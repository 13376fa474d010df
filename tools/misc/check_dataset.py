"""Check the data a config trains and tests on, every file of it.

    python tools/misc/check_dataset.py CONFIG [--loaders train_dataloader ...]
        [--no-decode] [--cfg-options k=v ...]

Builds the dataset of each loader as training does and checks what it loads
(:func:`mmsplitattn.engine.dataset_check.check_datasets`): the files its
entries name exist, are not empty and decode (``--no-decode``: only their
headers are read), label maps have their image's size and values within the
classes, instance labels, boxes and masks are sane, no dataset is empty.
Prints every bad file by kind; exits 1 if any problem would stop or corrupt
a run (training checks the same without reading the files).
"""
import argparse
import sys

from mmengine.config import Config, DictAction

from mmsplitattn.engine.dataset_check import check_datasets

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check the dataset files of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--loaders', nargs='+', choices=LOADERS, default=list(LOADERS),
                        help='which dataloaders to check (default: all the config has)')
    parser.add_argument('--no-decode', action='store_true',
                        help='read only the file headers (image sizes), no decoding')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options or {})
    report = check_datasets(cfg, args.loaders, read_headers=True, decode=not args.no_decode)
    print(report.format(args.config, limit=None))
    if not report.ok:
        print('some problems above would stop or corrupt training/testing', file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
