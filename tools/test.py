"""Evaluate a checkpoint: COCO bbox/segm mAP (mmdet), mIoU (mmseg) or
top-1/top-5 accuracy (mmpretrain); mmdet's tools/test.py with
``mmsplitattn.SafeRunner`` (docs/training.md) for configs that name no
``runner_type``."""
import os.path as osp

from mmengine.registry import RUNNERS

from mmsplitattn.engine.utils import task_of, tool_config, tool_parser, unwrap_model


def parse_args(argv=None):
    parser = tool_parser('Test (and evaluate) a model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='det/cls: a .pkl file for the predictions; seg: a folder '
                        'for the predicted label maps')
    parser.add_argument('--show', action='store_true', help='show predictions')
    parser.add_argument('--show-dir', help='dir to save pictures of the predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='show interval (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--fuse-conv-bn', action='store_true', help='fold each BN into its '
                        'convolution after loading (mmcv.cnn.fuse_conv_bn): same results')
    return parser.parse_args(argv)


def trigger_visualization_hook(cfg, args, task):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need a "visualization" hook in default_hooks')
    hook['draw' if task != 'cls' else 'enable'] = True
    if args.show:
        hook.update(show=True, wait_time=args.wait_time)
    if args.show_dir and task == 'seg':
        cfg.visualizer['save_dir'] = args.show_dir
    elif args.show_dir:  # absolute: mmdet's hook re-joins a relative one on every batch
        hook['out_dir' if task == 'cls' else 'test_out_dir'] = osp.abspath(args.show_dir)


def build_cfg(args):
    cfg = tool_config(args)
    task = task_of(cfg)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args, task)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the config')
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.out is not None and task == 'seg':
        cfg.test_evaluator.update(output_dir=args.out, keep_results=True)
    elif args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out!r}')
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        dump = 'DumpDetResults' if task == 'det' else 'DumpResults'
        cfg.test_evaluator = evaluators + [dict(type=dump, out_file_path=args.out)]
    return cfg


def main(argv=None):
    args = parse_args(argv)
    runner = RUNNERS.build(build_cfg(args))
    if args.fuse_conv_bn:  # test() finds the checkpoint loaded and does not reload it
        from mmcv.cnn import fuse_conv_bn
        runner.load_or_resume()
        fuse_conv_bn(unwrap_model(runner.model))
        runner.logger.info('--fuse-conv-bn: BatchNorms folded into their convolutions')
    return runner.test()


if __name__ == '__main__':
    main()
