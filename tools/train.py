"""Train a detector (mmdet), a segmentor (mmseg) or a classifier (mmpretrain)
from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CHECKPOINT]] [--allow-partial-load] [--skip-data-check]
        [--no-nonfinite-check] [--cfg-options k=v ...] [--launcher pytorch]

The arguments are mmdet 3.x's; the config's ``default_scope`` decides the
task. Works single-process, under torchrun (``tools/dist_train.sh``) and
slurm (``tools/slurm_train.sh``), and on machines without CUDA (gloo backend).

What it adds to MMEngine's Runner: the dataset's annotation files are checked
before anything is built; training stops at the first non-finite loss,
gradient norm or weight (``mmsplitattn.NonFiniteCheckHook``); checkpoints are
written atomically and never with non-finite values
(``mmsplitattn.SafeCheckpointHook``); ``--resume`` skips a corrupt latest
checkpoint for the newest good one; a checkpoint that does not fit the model
is refused (``mmsplitattn.CheckpointFitHook``); a failing sample names its
files (``mmsplitattn.engine.NamedErrorPipeline``); a timed-out collective names
the rank that stopped.
"""
import argparse
import os

import torch
from mmengine.config import DictAction
from mmengine.logging import print_log

from mmsplitattn.runtime import (adapt_cfg_to_device, add_custom_hook, build_runner,
                                 check_checkpoint, check_dataset_contents, check_dataset_paths,
                                 find_resumable_checkpoint, load_config, prepare_torch_load,
                                 run_reporting_timeouts, use_safe_checkpoint_hook)


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
        'latest good checkpoint in the work dir')
    parser.add_argument(
        '--allow-partial-load', action='store_true',
        help='load a load_from/--resume checkpoint that does not fit the model '
        '(only the matching tensors, with a warning) instead of stopping')
    parser.add_argument(
        '--skip-data-check', action='store_true',
        help='do not check the annotation files before training')
    parser.add_argument(
        '--no-nonfinite-check', action='store_true',
        help='keep training through NaN/inf losses (no mmsplitattn.NonFiniteCheckHook)')
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


def resolve_resume(cfg, resume) -> None:
    """Set ``cfg.resume``/``cfg.load_from`` for ``--resume [CHECKPOINT]``.

    With no value, the work dir's latest checkpoint is verified first; a
    corrupt one is skipped, with a warning naming it, for the newest good one.
    """
    if resume is None:
        if cfg.get('load_from'):
            check_checkpoint(cfg.load_from)
        return
    cfg.resume = True
    if resume != 'auto':
        check_checkpoint(resume)
        cfg.load_from = resume
        return
    path, bad = find_resumable_checkpoint(cfg.work_dir)
    rank0 = os.environ.get('RANK', '0') == '0'
    for bad_path, reason in bad:
        if rank0:
            print_log(f'--resume: skipping {bad_path}: {reason}', logger='current', level=30)
    if path is None and bad:
        raise RuntimeError(f'--resume: no loadable checkpoint in {cfg.work_dir!r}; every '
                           f'one is corrupt: {", ".join(p for p, _ in bad)}')
    if path is not None and bad and rank0:
        print_log(f'--resume: resuming from {path}, the newest good checkpoint',
                  logger='current', level=30)
    cfg.load_from = path  # None: nothing to resume, training starts afresh


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
    resolve_resume(cfg, args.resume)
    # Generator states go into every checkpoint, so --resume reproduces the run.
    add_custom_hook(cfg, 'mmsplitattn.RNGStateHook')
    add_custom_hook(cfg, 'mmsplitattn.CheckpointFitHook', allow_partial=args.allow_partial_load)
    if not args.no_nonfinite_check:
        add_custom_hook(cfg, 'mmsplitattn.NonFiniteCheckHook')
    use_safe_checkpoint_hook(cfg)
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None:
        loaders.append('val_dataloader')
    check_dataset_paths(cfg, loaders)
    if not args.skip_data_check:
        check_dataset_contents(cfg, loaders)
    adapt_cfg_to_device(cfg)
    return cfg


def main(argv=None):
    prepare_torch_load()
    args = parse_args(argv)
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    run_reporting_timeouts(runner.train, cfg)


if __name__ == '__main__':
    main()
