"""Train a detector (mmdet), segmentor (mmseg) or classifier (mmpretrain) from
a config: mmdet's tools/train.py with the package's Runner
(``mmsplitattn.SafeRunner``, whose protections docs/training.md lists) for
configs that name no ``runner_type``. Single process, torchrun
(tools/dist_train.sh), slurm (tools/slurm_train.sh), with or without CUDA."""
import argparse
import os
import os.path as osp

import torch
from mmengine.logging import print_log
from mmengine.registry import RUNNERS

from mmsplitattn.engine.utils import CfgOptionsAction, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector, segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (on CPUs: bfloat16 autocast)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the real batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or, with no value, from the '
                        'newest complete checkpoint in the work dir')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help='load a checkpoint that does not fit the model (the matching '
                        'tensors) instead of stopping (safety_cfg.allow_partial_load)')
    parser.add_argument('--skip-data-check', action='store_true',
                        help='do not check the datasets first (safety_cfg.data_check)')
    parser.add_argument('--no-nonfinite-check', action='store_true',
                        help='train through NaN/inf (safety_cfg.non_finite_check)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings: key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        use_amp(cfg)
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    safety = cfg.setdefault('safety_cfg', {})
    safety.update({k: False for k, off in [('data_check', args.skip_data_check),
                                          ('non_finite_check', args.no_nonfinite_check)] if off})
    if args.allow_partial_load:
        safety['allow_partial_load'] = True
    cfg.setdefault('runner_type', 'mmsplitattn.SafeRunner')
    RUNNERS.build(cfg).train()


if __name__ == '__main__':
    main()
