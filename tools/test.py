"""Evaluate a checkpoint: COCO bbox/segm mAP (mmdet), mIoU (mmseg) or
top-1/top-5 accuracy (mmpretrain).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--show] [--show-dir DIR] [--tta] [--fuse-conv-bn] [--allow-partial-load]
        [--skip-data-check] [--cfg-options k=v ...] [--launcher pytorch]

A checkpoint that does not fit the model is refused with the missing,
unexpected and shape-mismatched keys listed (``--allow-partial-load`` loads
the matching tensors anyway); the test annotations are checked first and a
failing sample names its files.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from mmsplitattn.runtime import (adapt_cfg_to_device, add_custom_hook, build_runner,
                                 check_checkpoint, check_dataset_contents, check_dataset_paths,
                                 load_config, prepare_torch_load, run_reporting_timeouts,
                                 unwrap_model)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the metrics')
    parser.add_argument(
        '--out', type=str,
        help='detection and classification: dump predictions to a pickle file; '
        'segmentation: a folder to write the predicted label maps to')
    parser.add_argument('--show', action='store_true', help='show predictions')
    parser.add_argument('--show-dir', help='dir to save pictures of the predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='show interval (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument(
        '--fuse-conv-bn', action='store_true',
        help='fold each BN into the convolution before it (mmcv.cnn.fuse_conv_bn) '
        'after loading the checkpoint: faster inference, same results')
    parser.add_argument(
        '--allow-partial-load', action='store_true',
        help='test with a checkpoint that does not fit the model (only the '
        'matching tensors are loaded, with a warning) instead of stopping')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not check the annotation files before testing')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args, task):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need a "visualization" hook in '
                           'default_hooks')
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
    check_checkpoint(args.checkpoint)
    cfg, task = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
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
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
    add_custom_hook(cfg, 'mmsplitattn.CheckpointFitHook', allow_partial=args.allow_partial_load)
    check_dataset_paths(cfg, ['test_dataloader'])
    if not args.skip_data_check:
        check_dataset_contents(cfg, ['test_dataloader'])
    adapt_cfg_to_device(cfg)
    return cfg


def fuse_model(runner) -> None:
    """Load the checkpoint, then fold every BN of the model into its convolution
    (the Runner's test() finds the checkpoint loaded and does not reload it)."""
    from mmcv.cnn import fuse_conv_bn
    runner.load_or_resume()
    fuse_conv_bn(unwrap_model(runner.model))
    runner.logger.info('--fuse-conv-bn: BatchNorms folded into their convolutions')


def main(argv=None):
    prepare_torch_load()
    args = parse_args(argv)
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    if args.fuse_conv_bn:
        fuse_model(runner)
    return run_reporting_timeouts(runner.test, cfg)


if __name__ == '__main__':
    main()
