"""Training step of one ACmix module: ours, the formulation ACmix had before
(taken from git history) and the straightforward unfold formulation of the
official code.

    python tools/analysis_tools/benchmark_acmix.py [--channels 256] [--batch 2]
        [--size 64] [--steps 3] [--rounds 3] [--device cpu|cuda]
        [--before REV] [--json FILE]

Each measurement runs in a fresh process, the variants interleaved round by
round, so one variant's allocations never count against the other. Per
variant: the time of a training step (forward + backward, the fastest of
``--steps``), the peak memory (the process's peak RSS above its level once the
module and inputs exist, ``mmsplitattn.profiling.PeakMemory``; on CUDA, the
allocator's peak), the bytes saved for backward
(``mmsplitattn.profiling.saved_bytes``) and the number of torch profiler
events of one step (each an operator call, a kernel launch on a GPU).
Medians over the rounds; ratios to the unfold formulation and to ``before``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = ('ours', 'before', 'unfold')
# the last commit with the per-offset formulation (strided views of the
# reflection-padded maps, fc then dep_conv): what ACmix was before the lean one
BEFORE = '3d37f7f'
METRICS = ('time', 'peak_mb', 'saved_mb', 'events')


def before_acmix(rev=BEFORE):
    """The ACmix class of commit ``rev``, read from git history (not registered)."""
    path = 'mmsplitattn/models/layers/acmix.py'
    src = subprocess.run(['git', '-C', ROOT, 'show', f'{rev}:{path}'], capture_output=True,
                         text=True, check=True).stdout
    src = src.replace('@MODELS.register_module()\n', '').replace(
        'from ..checks import', 'from mmsplitattn.models.checks import')
    namespace = {}
    exec(compile(src, f'{rev}:{path}', 'exec'), namespace)
    return namespace['ACmix']


def worker(args):
    import torch

    from mmsplitattn.models import ACmix
    from mmsplitattn.models.layers.acmix_unfold import acmix_unfold_forward
    from mmsplitattn.profiling import PeakMemory, saved_bytes
    torch.manual_seed(0)
    device = torch.device(args.device)
    m = ACmix(args.channels, args.channels).to(device)
    if args.worker == 'before':
        module = before_acmix(args.before)(args.channels, args.channels).to(device)
        module.load_state_dict(m.state_dict())
    else:
        module = m
    forward = module if args.worker != 'unfold' else (lambda x: acmix_unfold_forward(m, x))
    x = torch.randn(args.batch, args.channels, args.size, args.size, device=device,
                    requires_grad=True)

    def step():
        forward(x).square().mean().backward()
        if device.type == 'cuda':
            torch.cuda.synchronize()

    with PeakMemory(device) as memory:  # from here on: the inputs exist
        step()  # warm-up (counts for memory, not for time)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    saved = saved_bytes(lambda: forward(x), exclude=[x, *module.parameters()]) / 2**20
    with torch.profiler.profile() as prof:
        step()
    print(json.dumps(dict(time=min(times), peak_mb=memory.peak_mb, saved_mb=saved,
                          events=len(prof.events()))))


def measure(variant, args):
    """Run one worker process; returns {metric: value}."""
    cmd = [sys.executable, osp.abspath(__file__), '--worker', variant,
           '--channels', str(args.channels), '--batch', str(args.batch),
           '--size', str(args.size), '--steps', str(args.steps), '--device', args.device,
           '--before', args.before]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONWARNINGS='ignore')).stdout
    return json.loads(out.strip().splitlines()[-1])


def ratios(result, baseline):
    """ours / baseline per metric (None where the baseline measured 0)."""
    return {k: result['ours'][k] / result[baseline][k] if result[baseline][k] > 0 else None
            for k in METRICS}


def main(argv=None):
    """Returns ours / unfold for 'time' and 'peak_mb'."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=3, help='timed steps per process')
    parser.add_argument('--rounds', type=int, default=3, help='processes per variant')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--before', default=BEFORE,
                        help='the git commit whose ACmix is "before" (default: %(default)s)')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--worker', choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    runs = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for v in VARIANTS:
            print(f'[round {r + 1}/{args.rounds}] {v} ...', flush=True)
            runs[v].append(measure(v, args))
    result = {v: {k: statistics.median(run[k] for run in runs[v]) for k in METRICS}
              for v in VARIANTS}
    ratio = {b: ratios(result, b) for b in ('unfold', 'before')}
    print(f'\nACmix train step, C={args.channels}, input {args.batch}x{args.channels}x'
          f'{args.size}x{args.size}, {args.device}, before = {args.before}')
    print(f'{"variant":<16} {"time (s)":>10} {"peak (MiB)":>11} {"saved (MiB)":>12} '
          f'{"events":>8}')
    rows = [(v, result[v]) for v in VARIANTS] + [(f'ours / {b}', ratio[b]) for b in ratio]
    for name, row in rows:
        cells = ['n/a' if row[k] is None else
                 (f'{row[k]:.2f}x' if name.startswith('ours /') else
                  f'{row[k]:.0f}' if k == 'events' else
                  f'{row[k]:.3f}' if k == 'time' else f'{row[k]:.1f}') for k in METRICS]
        print(f'{name:<16} ' + ' '.join(f'{c:>{w}}' for c, w in zip(cells, (10, 11, 12, 8))))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), result=result, ratio=ratio, runs=runs), f, indent=2)
    return {k: ratio['unfold'][k] for k in ('time', 'peak_mb')}


if __name__ == '__main__':
    main()
