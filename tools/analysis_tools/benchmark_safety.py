"""Step time of mmsplitattn.SafeRunner (its default protections) against a plain
MMEngine Runner on the same training, alternated in one process.

    python tools/analysis_tools/benchmark_safety.py [CONFIG] [--iters 30] [--rounds 5]

Each round builds both runners from the same config (a fixed seed, the same
images) and trains ``--iters`` iterations with each, in turn, the order
swapped every round; the step time is the mean of MMEngine's per-iteration
``time`` after ``--warmup`` iterations. Prints each round and the median
ratio, and the time spent in the hooks SafeRunner adds (timed around each of
their calls), which a loaded machine's noise affects far less than the ratio.
Run from a directory holding the config's data (``data/demo``).
"""
import argparse
import copy
import itertools
import statistics
import tempfile
import time

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

DEMO = 'configs/demo/maskrcnn_resnest_demo.py'
# no validation, no checkpoint in the timed iterations
QUICK = {'train_dataloader.persistent_workers': False, 'randomness.seed': 0,
         'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
         'default_hooks.checkpoint.interval': 10 ** 6, 'default_hooks.logger.interval': 10}


_runs = itertools.count()


def step_time(cfg, plain: bool, iters: int, warmup: int):
    """(mean step time, time in SafeRunner's own hooks per iteration) in seconds."""
    cfg = copy.deepcopy(cfg)
    run = next(_runs)  # MMEngine keeps one logger, visualizer, ... per name
    cfg.experiment_name = f'benchmark_safety_{run}'
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = f'visualizer_{run}'
    cfg.train_cfg = dict(by_epoch=False, max_iters=iters, val_interval=10 ** 6)
    spent = [0.0]

    def timed(call):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return wrapper

    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        if plain:
            cfg.pop('runner_type', None)
            runner = Runner.from_cfg(cfg)
        else:
            runner = RUNNERS.build(cfg)
        for hook in runner.hooks:
            if type(hook).__module__.startswith('mmsplitattn.'):
                for name in ('after_train_iter', 'after_train_epoch', 'before_save_checkpoint'):
                    setattr(hook, name, timed(getattr(hook, name)))
        runner.train()
        times = runner.message_hub.get_scalar('train/time').data[0][warmup:]
    return statistics.fmean(times), spent[0] / iters


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=DEMO)
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(dict(QUICK, **args.cfg_options))
    ratios, hooks = [], []
    for r in range(args.rounds):
        order = [True, False] if r % 2 == 0 else [False, True]
        times = {plain: step_time(cfg, plain, args.iters, args.warmup) for plain in order}
        ratios.append(times[False][0] / times[True][0])
        hooks.append(times[False][1] / times[False][0])
        print(f'round {r + 1}: plain Runner {times[True][0] * 1e3:.1f} ms/iter, SafeRunner '
              f'{times[False][0] * 1e3:.1f} ms/iter, ratio {ratios[-1]:.4f}; its hooks '
              f'{times[False][1] * 1e3:.2f} ms/iter', flush=True)
    ratio = statistics.median(ratios)
    print(f'median ratio over {args.rounds} rounds: {ratio:.4f} '
          f'({(ratio - 1) * 100:+.2f} % step time); SafeRunner\'s hooks: '
          f'{statistics.median(hooks) * 100:.3f} % of its step time')
    return ratio


if __name__ == '__main__':
    main()
