"""Train a detector (mmdet), a segmentor (mmseg) or a classifier (mmpretrain)
from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--cfg-options k=v ...] [--launcher pytorch]

The arguments are mmdet 3.x's; the config's ``default_scope`` decides the
task. Works single-process, under torchrun (``tools/dist_train.sh``) and
slurm, and on machines without CUDA (gloo backend).
"""
import argparse
import os

import torch
from mmengine.config import DictAction

from mmsplitattn.runtime import (adapt_cfg_to_device, build_runner, check_checkpoint,
                                 check_dataset_paths, load_config, prepare_torch_load)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector, segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the real batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or, with no value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs, e.g. '
        'train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args):
    """The runner config for ``args``, checked before anything is built."""
    cfg, _ = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or '
                             f'AmpOptimWrapper, got {optim_wrapper!r}')
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:  # MMEngine's AmpOptimWrapper needs a GPU: bfloat16 autocast instead
            cfg.optim_wrapper.type = 'mmsplitattn.CPUAmpOptimWrapper'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size '
                             'in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_checkpoint(args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    # Generator states go into every checkpoint, so --resume reproduces the run.
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') in ('mmsplitattn.RNGStateHook', 'RNGStateHook') for h in hooks):
        cfg.custom_hooks = hooks + [dict(type='mmsplitattn.RNGStateHook')]
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    check_dataset_paths(cfg, loaders)
    adapt_cfg_to_device(cfg)
    return cfg


def main(argv=None):
    prepare_torch_load()
    args = parse_args(argv)
    cfg = build_cfg(args)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
