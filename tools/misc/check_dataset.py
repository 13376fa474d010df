"""Check the data a config trains and tests on, every file of it.

    python tools/misc/check_dataset.py CONFIG [--loaders train_dataloader ...]
        [--no-decode] [--cfg-options k=v ...]

COCO-style instance files (mmdet), image/label folders such as Cityscapes
(mmseg) and the ImageNet layout (mmpretrain ``CustomDataset``/``ImageNet``):
annotation files parse, every image (and label map) decodes, polygons are not
empty or degenerate, category ids are known, labels have their image's size
and values in range. Prints, for each dataset, what was checked and the
count and first files of each kind of problem; exits 1 if any problem would
stop or corrupt a run (``tools/train.py`` runs the cheap part, without
decoding, before training).
"""
import argparse
import sys

from mmengine.config import DictAction

from mmsplitattn.runtime import check_dataset_cfg, check_dataset_paths, load_config

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check the dataset files of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--loaders', nargs='+', choices=LOADERS, default=list(LOADERS),
                        help='which dataloaders to check (default: all the config has)')
    parser.add_argument('--no-decode', action='store_true',
                        help='only the annotation files and file headers (what '
                        'tools/train.py checks), no image decoding')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg, _ = load_config(args.config, cfg_options=args.cfg_options)
    loaders = [name for name in args.loaders if cfg.get(name) is not None]
    check_dataset_paths(cfg, loaders)
    fatal, seen = False, {}
    for name in loaders:
        key = repr(cfg[name]['dataset'])
        if key in seen:
            print(f'{name}: the same dataset as {seen[key]}')
            continue
        seen[key] = name
        report = check_dataset_cfg(cfg[name]['dataset'], name, decode=not args.no_decode)
        print(report.summary())
        fatal = fatal or bool(report.fatal)
    if fatal:
        print('some problems above would stop or corrupt training/testing', file=sys.stderr)
    return 1 if fatal else 0


if __name__ == '__main__':
    sys.exit(main())
