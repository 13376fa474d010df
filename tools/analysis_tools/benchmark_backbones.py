"""Inference time, training-step time and peak training memory of backbones,
ours against their peers, like with like, interleaved in one run, with ratios
to a baseline.

    python tools/analysis_tools/benchmark_backbones.py
        [--models ours-resnest50 mmdet-resnest50 mmdet-resnetv1d50 timm-resnest50d]
        [--baseline mmdet-resnest50] [--batch 2] [--size 224] [--rounds 6]
        [--device cpu|cuda] [--channels-last] [--compile] [--json FILE]

Every model is measured in each of the set-ups users run, the peer with its
own equivalent switched on:

* ``infer``: eval mode, no grad;
* ``fused``: the same after ``mmcv.cnn.fuse_conv_bn`` (BNs folded into the
  convolutions, what ``tools/test.py --fuse-conv-bn`` does);
* ``train``: one training step (forward, backward);
* ``train_cp``: the same built with ``with_cp=True`` (activation
  checkpointing; mmdet/mmseg and ours, not timm's features model);
* ``peak`` / ``peak_cp``: peak memory of those training steps.

Every model lives in a process of its own (as in training, where a process
runs one model), so no model inherits another's heap, and each round starts
new processes, since the same model's CPU times differ from one process to
the next (docs/performance.md). Times are medians over rounds (so over
processes); in each round every model runs once per set-up, in turn, after a
pause, and the models take turns at going first (on CPU the slot alone moves
the times), so machine noise falls on all of them alike. Peak memory is
measured in a fresh process per model: peak RSS above the level once the
model and input exist (``mmsplitattn.profiling.PeakMemory``; the CUDA
allocator's peak on GPU), with glibc serving each allocation of 64 KiB or
more from its own mapping so that RSS tracks live tensors.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from mmsplitattn.profiling import PeakMemory


def _ours(cls_name, depth, **kw):
    import mmsplitattn.models
    return getattr(mmsplitattn.models, cls_name)(depth, **kw)


# mmdet's ResNets default to norm_eval=True (BN frozen in train mode); ours
# and timm's train their BNs, so the peers are compared with norm_eval=False.
def _mmdet_resnest(depth, **kw):
    from mmdet.models.backbones import ResNeSt
    return ResNeSt(depth=depth, norm_eval=False, **kw)


def _mmdet_resnetv1d(depth, **kw):
    from mmdet.models.backbones import ResNetV1d
    return ResNetV1d(depth=depth, norm_eval=False, **kw)


def _timm(name, with_cp=False):
    if with_cp:
        return None
    import timm
    return timm.create_model(name, pretrained=False, features_only=True)


# name -> builder(with_cp) (None where the model has no with_cp)
MODELS = {
    'ours-resnest50': lambda **kw: _ours('ResNeSt', 50, **kw),
    'mmdet-resnest50': lambda **kw: _mmdet_resnest(50, **kw),
    'mmdet-resnetv1d50': lambda **kw: _mmdet_resnetv1d(50, **kw),
    'timm-resnest50d': lambda **kw: _timm('resnest50d', **kw),
    'ours-resnest101': lambda **kw: _ours('ResNeSt', 101, stem_channels=128, **kw),
    'mmdet-resnest101': lambda **kw: _mmdet_resnest(101, stem_channels=128, **kw),
    'ours-sem50': lambda **kw: _ours('SEMResNet', 50, **kw),
    'ours-spanet50': lambda **kw: _ours('SPANetResNet', 50, **kw),
    'ours-acmix50': lambda **kw: _ours('ACmixResNet', 50, **kw),
}
PHASES = ('infer', 'fused', 'train', 'train_cp')
PAUSE = 0.5  # seconds between two timed runs


def prepare(name, args, with_cp=False):
    """Model and input on the device, in the requested memory format; None
    if the model has no ``with_cp``."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = MODELS[name](with_cp=with_cp)
    if model is None:
        return None, None
    model = model.to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    return model, x


def fused(model):
    """A copy of ``model`` with its BNs folded into the convolutions."""
    from mmcv.cnn import fuse_conv_bn
    model = copy.deepcopy(model)
    model.eval()  # mmdet's ResNets' train() returns None
    return fuse_conv_bn(model)


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def infer(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    _sync(x.device)
    return out


def train_step(model, x):
    model.train()
    sum(o.float().mean() for o in model(x)).backward()
    model.zero_grad(set_to_none=True)
    _sync(x.device)


def timed(fn, *a):
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def memory_worker(name, args):
    model, x = prepare(name, args, with_cp=args.with_cp)
    if model is None:
        print(json.dumps(dict(peak_mb=None)))
        return
    x.requires_grad_(args.with_cp)  # with_cp only checkpoints inputs that need grad
    train_step(model, x)  # compilation and one-off allocations are not counted
    with PeakMemory(x.device) as memory:
        for _ in range(2):
            train_step(model, x)
    print(json.dumps(dict(peak_mb=memory.peak_mb)))


def timing_worker(name, args):
    """Serves one model: answers each phase line of stdin with the time of
    one run, as a 'RESULT {json}' line (null where the phase does not apply)."""
    model, x = prepare(name, args)
    model_cp, x_cp = prepare(name, args, with_cp=True)
    if x_cp is not None:
        x_cp.requires_grad_(True)
    model_fused = fused(model)
    runs = dict(infer=(infer, model, x), fused=(infer, model_fused, x),
                train=(train_step, model, x), train_cp=(train_step, model_cp, x_cp))
    for fn, m, inp in runs.values():  # warm-up (and compilation)
        if m is not None:
            fn(m, inp)
    print('READY', flush=True)
    for line in sys.stdin:
        fn, m, inp = runs[line.strip()]
        seconds = None if m is None else timed(fn, m, inp)
        print('RESULT ' + json.dumps(dict(seconds=seconds)), flush=True)


def _worker_cmd(role, name, args):
    cmd = [sys.executable, os.path.abspath(__file__), role, name, '--batch', str(args.batch),
           '--size', str(args.size), '--device', args.device]
    return cmd + ['--channels-last'] * args.channels_last + ['--compile'] * args.compile


def peak_memory(name, args, with_cp):
    # glibc keeps freed blocks in its heap, so RSS would follow fragmentation;
    # with every allocation >= 64 KiB its own mapping it follows live tensors.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    cmd = _worker_cmd('--memory-worker', name, args) + ['--with-cp'] * with_cp
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_mb']


class _Worker:
    """A timing worker process for one model."""

    def __init__(self, name, args):
        self.name = name
        self.proc = subprocess.Popen(_worker_cmd('--timing-worker', name, args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read('READY')

    def _read(self, prefix):
        for line in self.proc.stdout:  # other output of the model code is skipped
            if line.startswith(prefix):
                return line[len(prefix):]
        raise RuntimeError(f'the {self.name} worker exited with code {self.proc.wait()} '
                           '(its error is printed above)')

    def run(self, phase):
        self.proc.stdin.write(phase + '\n')
        self.proc.stdin.flush()
        return json.loads(self._read('RESULT '))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def timing_round(order, args, runs):
    """One round: a fresh worker process per model, every phase once per model
    in ``order``, each run after a pause in which the previous one's threads
    go idle. Fresh processes each round: a process's heap layout moves the
    CPU step times of everything it runs."""
    workers = {}
    try:
        for name in order:
            workers[name] = _Worker(name, args)
        for phase in PHASES:
            for name, worker in workers.items():
                time.sleep(PAUSE)
                runs[name][phase].append(worker.run(phase)['seconds'])
    finally:
        for worker in workers.values():
            worker.close()


def benchmark(args):
    runs = {n: {phase: [] for phase in PHASES} for n in args.models}
    for r in range(args.rounds):
        # the models take turns at going first: on CPU the slot in the round
        # alone moves a model's times (docs/performance.md)
        shift = r % len(args.models)
        order = args.models[shift:] + args.models[:shift]
        print(f'round {r + 1}/{args.rounds}: {", ".join(order)} ...', flush=True)
        timing_round(order, args, runs)
    result = {}
    for name in args.models:
        print(f'peak memory of {name} ...', flush=True)
        r = {phase: None if None in times else statistics.median(times)
             for phase, times in runs[name].items()}
        r['peak_mb'] = peak_memory(name, args, with_cp=False)
        r['peak_cp_mb'] = peak_memory(name, args, with_cp=True)
        result[name] = r
    base = result[args.baseline]
    for r in result.values():  # None where either side has no figure
        r['ratio'] = {k: r[k] / base[k] if r[k] is not None and base[k] else None
                      for k in PHASES + ('peak_mb', 'peak_cp_mb')}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS),
                        default=['ours-resnest50', 'mmdet-resnest50', 'mmdet-resnetv1d50',
                                 'timm-resnest50d'])
    parser.add_argument('--baseline', default='mmdet-resnest50')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=6,
                        help='rounds (new processes each); the models take turns at going first')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--compile', action='store_true', help='torch.compile every model')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    parser.add_argument('--timing-worker', help=argparse.SUPPRESS)
    parser.add_argument('--with-cp', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        return memory_worker(args.memory_worker, args)
    if args.timing_worker:
        return timing_worker(args.timing_worker, args)
    if args.baseline not in args.models:
        parser.error(f'--baseline {args.baseline} must be one of --models')
    result = benchmark(args)
    print(f'\nbatch {args.batch}, {args.size}x{args.size}, {args.device}'
          f'{", channels_last" if args.channels_last else ""}'
          f'{", compiled" if args.compile else ""}; ratios to {args.baseline}')
    columns = PHASES + ('peak_mb', 'peak_cp_mb')
    print(f'{"model":<20}' + ''.join(f'{c:>12}' for c in columns)
          + ''.join(f'{c + " x":>14}' for c in columns))

    def fmt(value, width, digits):
        return f'{"n/a":>{width}}' if value is None else f'{value:>{width}.{digits}f}'

    for name, r in result.items():
        print(f'{name:<20}' + ''.join(fmt(r[c], 12, 3 if c in PHASES else 1) for c in columns)
              + ''.join(fmt(r['ratio'][c], 14, 2) for c in columns))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), result=result), f, indent=2)
    return result


if __name__ == '__main__':
    main()
