"""Train a detector (mmdet), segmentor (mmseg) or classifier (mmpretrain):
mmdet's tools/train.py with ``mmsplitattn.SafeRunner`` (docs/training.md) for
configs that name no ``runner_type``; single process, torchrun or slurm, with
or without CUDA."""
import torch
from mmengine.logging import print_log
from mmengine.registry import RUNNERS

from mmsplitattn.engine.utils import tool_config, tool_parser


def parse_args(argv=None):
    parser = tool_parser('Train a detector, segmentor or classifier')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (on CPUs: bfloat16 autocast)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the real batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or, with no value, from the '
                        'newest complete checkpoint in the work dir')
    parser.add_argument('--no-nonfinite-check', action='store_true',
                        help='train through NaN/inf (safety_cfg.non_finite_check)')
    return parser.parse_args(argv)


def use_amp(cfg) -> None:
    """--amp: MMEngine's AmpOptimWrapper (fp16, dynamic loss scale) with CUDA,
    bfloat16 autocast without; a config's own AmpOptimWrapper is kept."""
    kind = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if kind == 'AmpOptimWrapper':
        print_log('--amp: the config uses AmpOptimWrapper already; kept', logger='current')
    elif kind != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or AmpOptimWrapper, '
                         f'got {kind!r}')
    elif torch.cuda.is_available():
        cfg.optim_wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic')
    else:
        cfg.optim_wrapper.type = 'mmsplitattn.CPUAmpOptimWrapper'
        print_log('--amp without CUDA: bfloat16 autocast of the backbone and neck',
                  logger='current', level=30)


def main(argv=None):
    args = parse_args(argv)
    cfg = tool_config(args)
    if args.amp:
        use_amp(cfg)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    if args.no_nonfinite_check:
        cfg.safety_cfg['non_finite_check'] = False
    RUNNERS.build(cfg).train()


if __name__ == '__main__':
    main()
