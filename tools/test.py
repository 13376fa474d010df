"""Evaluate a checkpoint: COCO bbox/segm mAP (mmdet), mIoU (mmseg) or
top-1/top-5 accuracy (mmpretrain).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show] [--show-dir DIR] [--tta] [--fuse-conv-bn] [--allow-partial-load]
        [--skip-data-check] [--cfg-options k=v ...] [--launcher pytorch]

mmdet's tools/test.py with the package's Runner (``mmsplitattn.SafeRunner``)
for configs that name no ``runner_type``: the test set is checked first, a
checkpoint that does not fit the model is refused (``--allow-partial-load``
loads the matching tensors) and a failing sample names its files.
"""
import argparse
import os
import os.path as osp

from mmengine.registry import RUNNERS

from mmsplitattn.engine import check_checkpoint
from mmsplitattn.engine.utils import CfgOptionsAction, load_config, task_of, unwrap_model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the metrics')
    parser.add_argument('--out', help='det/cls: a .pkl file for the predictions; seg: a folder '
                        'for the predicted label maps')
    parser.add_argument('--show', action='store_true', help='show predictions')
    parser.add_argument('--show-dir', help='dir to save pictures of the predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='show interval (s)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--fuse-conv-bn', action='store_true', help='fold each BN into its '
                        'convolution after loading (mmcv.cnn.fuse_conv_bn): same results')
    parser.add_argument('--allow-partial-load', action='store_true', help='load the matching '
                        'tensors of a checkpoint that does not fit (safety_cfg)')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not check the test set first (safety_cfg.data_check)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args, task):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need a "visualization" hook in default_hooks')
    hook['draw' if task != 'cls' else 'enable'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if task == 'cls':  # mmpretrain's hook writes to out_dir as given
            hook['out_dir'] = osp.abspath(args.show_dir)
        elif task == 'det':
            # absolute: mmdet's hook re-joins a relative one on every batch
            hook['test_out_dir'] = osp.abspath(args.show_dir)
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def build_cfg(args):
    check_checkpoint(args.checkpoint, crc=False)  # missing or truncated: named before building
    cfg = load_config(args.config, args.cfg_options)
    task = task_of(cfg)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args, task)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the config')
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.out is not None:
        if task in ('det', 'cls'):
            if not args.out.endswith(('.pkl', '.pickle')):
                raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}')
            evaluators = cfg.test_evaluator
            evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
            dump = 'DumpDetResults' if task == 'det' else 'DumpResults'
            cfg.test_evaluator = evaluators + [dict(type=dump, out_file_path=args.out)]
        else:
            cfg.test_evaluator.update(output_dir=args.out, keep_results=True)
    safety = cfg.setdefault('safety_cfg', {})
    if args.skip_data_check:
        safety['data_check'] = False
    if args.allow_partial_load:
        safety['allow_partial_load'] = True
    cfg.setdefault('runner_type', 'mmsplitattn.SafeRunner')
    return cfg


def fuse_model(runner) -> None:
    """Load the checkpoint, then fold every BN of the model into its convolution
    (the Runner's test() finds the checkpoint loaded and does not reload it)."""
    from mmcv.cnn import fuse_conv_bn
    runner.load_or_resume()
    fuse_conv_bn(unwrap_model(runner.model))
    runner.logger.info('--fuse-conv-bn: BatchNorms folded into their convolutions')


def main(argv=None):
    args = parse_args(argv)
    runner = RUNNERS.build(build_cfg(args))
    if args.fuse_conv_bn:
        fuse_model(runner)
    return runner.test()


if __name__ == '__main__':
    main()
