"""Inference time, training-step time and peak memory of backbones, ours
against their peers, interleaved in one run, with ratios to a baseline.

    python tools/analysis_tools/benchmark_backbones.py
        [--models ours-resnest50 mmdet-resnest50 mmdet-resnetv1d50 timm-resnest50d]
        [--baseline mmdet-resnest50] [--batch 2] [--size 224] [--rounds 5]
        [--device cpu|cuda] [--channels-last] [--compile] [--malloc default|keep]
        [--json FILE]

Every model lives in a process of its own (as in training, where a process
runs one model), so no model inherits another's heap: on CPU, glibc returns
freed memory to the system and a step pays page faults to get it back, how
many depending on what ran before. Times are medians over rounds; in each
round every model runs once, in turn, so machine noise falls on all of them
alike (all inference rounds, then all training rounds). Minor page faults
per training step are reported beside the times; ``--malloc keep`` makes the
timing workers keep freed memory (``mmsplitattn.allocator.keep_freed_memory``:
no page faults once warm), which leaves the computation alone.

Peak memory is measured in a fresh process per model during training steps:
peak RSS above the level once the model and input exist
(``mmsplitattn.profiling.PeakMemory``; the CUDA allocator's peak on GPU),
with glibc serving each allocation of 64 KiB or more from its own mapping so
that RSS tracks live tensors.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from mmsplitattn.allocator import keep_freed_memory
from mmsplitattn.profiling import PeakMemory


def _ours(cls_name, depth, **kw):
    import mmsplitattn.models
    return getattr(mmsplitattn.models, cls_name)(depth, **kw)


# mmdet's ResNets default to norm_eval=True (BN frozen in train mode); ours
# and timm's train their BNs, so the peers are compared with norm_eval=False.
def _mmdet_resnest(depth, **kw):
    from mmdet.models.backbones import ResNeSt
    return ResNeSt(depth=depth, norm_eval=False, **kw)


def _mmdet_resnetv1d(depth):
    from mmdet.models.backbones import ResNetV1d
    return ResNetV1d(depth=depth, norm_eval=False)


def _timm(name):
    import timm
    return timm.create_model(name, pretrained=False, features_only=True)


MODELS = {
    'ours-resnest50': lambda: _ours('ResNeSt', 50),
    'mmdet-resnest50': lambda: _mmdet_resnest(50),
    'mmdet-resnetv1d50': lambda: _mmdet_resnetv1d(50),
    'timm-resnest50d': lambda: _timm('resnest50d'),
    'ours-resnest101': lambda: _ours('ResNeSt', 101, stem_channels=128),
    'mmdet-resnest101': lambda: _mmdet_resnest(101, stem_channels=128),
    'ours-sem50': lambda: _ours('SEMResNet', 50),
    'ours-spanet50': lambda: _ours('SPANetResNet', 50),
    'ours-acmix50': lambda: _ours('ACmixResNet', 50),
}


def prepare(name, args):
    """Model and input on the device, in the requested memory format."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = MODELS[name]().to(device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if args.compile:
        model = torch.compile(model)
    return model, x


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
    _sync(x.device)


def timed(fn, *a):
    t0 = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t0


def _minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def memory_worker(name, args):
    model, x = prepare(name, args)
    train_step(model, x)  # compilation and one-off allocations are not counted
    model.zero_grad(set_to_none=True)
    with PeakMemory(x.device) as memory:
        for _ in range(2):
            train_step(model, x)
    print(json.dumps(dict(peak_mb=memory.peak_mb)))


def timing_worker(name, args):
    """Serves one model: answers each 'infer' / 'train' line of stdin with
    the time and minor page faults of one run, as a 'RESULT {json}' line."""
    if args.malloc == 'keep' and not keep_freed_memory():
        raise RuntimeError('--malloc keep: this C library has no mallopt (glibc only)')
    model, x = prepare(name, args)
    train_step(model, x)  # warm-up (and compilation)
    model.zero_grad(set_to_none=True)
    infer(model, x)
    print('READY', flush=True)
    phases = dict(infer=infer, train=train_step)
    for line in sys.stdin:
        faults = _minor_faults()
        seconds = timed(phases[line.strip()], model, x)
        faults = _minor_faults() - faults
        model.zero_grad(set_to_none=True)
        print('RESULT ' + json.dumps(dict(seconds=seconds, faults=faults)), flush=True)


def _worker_cmd(role, name, args):
    cmd = [sys.executable, os.path.abspath(__file__), role, name, '--batch', str(args.batch),
           '--size', str(args.size), '--device', args.device, '--malloc', args.malloc]
    return cmd + ['--channels-last'] * args.channels_last + ['--compile'] * args.compile


def peak_memory(name, args):
    # glibc keeps freed blocks in its heap, so RSS would follow fragmentation;
    # with every allocation >= 64 KiB its own mapping it follows live tensors.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    out = subprocess.run(_worker_cmd('--memory-worker', name, args), capture_output=True,
                         text=True, check=True, env=env).stdout
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


def benchmark(args):
    workers = {}
    try:
        for name in args.models:
            print(f'building {name} ...', flush=True)
            workers[name] = _Worker(name, args)
        # inference rounds first, then training rounds: a training step moves
        # the BN running statistics, which a model may cache derived weights from
        runs = {n: dict(infer=[], train=[]) for n in args.models}
        for phase in ('infer', 'train'):
            for r in range(args.rounds):
                print(f'{phase} round {r + 1}/{args.rounds}', flush=True)
                for name, worker in workers.items():
                    runs[name][phase].append(worker.run(phase))
    finally:
        for worker in workers.values():
            worker.close()
    result = {}
    for name in args.models:
        print(f'peak memory of {name} ...', flush=True)
        r = {phase: statistics.median(run['seconds'] for run in runs[name][phase])
             for phase in ('infer', 'train')}
        r['train_faults'] = statistics.median(run['faults'] for run in runs[name]['train'])
        r['train_peak_mb'] = peak_memory(name, args)
        result[name] = r
    base = result[args.baseline]
    for r in result.values():  # None where the baseline measured 0 (too small to see)
        r['ratio'] = {k: r[k] / base[k] if base[k] > 0 else None
                      for k in ('infer', 'train', 'train_peak_mb')}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS),
                        default=['ours-resnest50', 'mmdet-resnest50', 'mmdet-resnetv1d50',
                                 'timm-resnest50d'])
    parser.add_argument('--baseline', default='mmdet-resnest50')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--compile', action='store_true', help='torch.compile every model')
    parser.add_argument('--malloc', choices=['default', 'keep'], default='default',
                        help='keep: glibc keeps freed memory in the timing workers '
                             '(no page faults once warm)')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    parser.add_argument('--timing-worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        return memory_worker(args.memory_worker, args)
    if args.timing_worker:
        return timing_worker(args.timing_worker, args)
    if args.baseline not in args.models:
        parser.error(f'--baseline {args.baseline} must be one of --models')
    result = benchmark(args)
    print(f'\nbatch {args.batch}, {args.size}x{args.size}, {args.device}'
          f'{", channels_last" if args.channels_last else ""}{", compiled" if args.compile else ""}'
          f'{", malloc keep" if args.malloc == "keep" else ""}; ratios to {args.baseline}')
    print(f'{"model":<20}{"infer (s)":>11}{"train (s)":>11}{"peak (MiB)":>12}'
          f'{"infer x":>9}{"train x":>9}{"peak x":>8}{"faults/step":>13}')
    def fmt(value, width):
        return f'{"n/a":>{width}}' if value is None else f'{value:>{width}.2f}'

    for name, r in result.items():
        q = r['ratio']
        print(f'{name:<20}{r["infer"]:>11.3f}{r["train"]:>11.3f}{r["train_peak_mb"]:>12.1f}'
              f'{fmt(q["infer"], 9)}{fmt(q["train"], 9)}{fmt(q["train_peak_mb"], 8)}'
              f'{r["train_faults"]:>13.0f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), result=result), f, indent=2)
    return result


if __name__ == '__main__':
    main()
