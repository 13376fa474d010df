"""Training-step time and peak memory of one ACmix module: ours against the
straightforward unfold formulation of the official code.

    python tools/analysis_tools/benchmark_acmix.py [--channels 256] [--batch 2]
        [--size 64] [--steps 3] [--rounds 3] [--device cpu|cuda] [--json FILE]

Each measurement runs in a fresh process, the variants interleaved round by
round, so one variant's allocations never count against the other. Peak
memory is the process's peak RSS above its level once the module and inputs
exist (``mmsplitattn.profiling.PeakMemory``; on CUDA, the allocator's peak). Ratios are
ours / unfold, medians over the rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = ('ours', 'unfold')


def worker(args):
    import torch

    from mmsplitattn.models import ACmix
    from mmsplitattn.models.layers.acmix_unfold import acmix_unfold_forward
    from mmsplitattn.profiling import PeakMemory
    torch.manual_seed(0)
    device = torch.device(args.device)
    m = ACmix(args.channels, args.channels).to(device)
    forward = m if args.worker == 'ours' else (lambda x: acmix_unfold_forward(m, x))
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
    print(json.dumps(dict(time=min(times), peak_mb=memory.peak_mb)))


def measure(variant, args):
    """Run one worker process; returns {'time': s, 'peak_mb': MiB}."""
    cmd = [sys.executable, os.path.abspath(__file__), '--worker', variant,
           '--channels', str(args.channels), '--batch', str(args.batch),
           '--size', str(args.size), '--steps', str(args.steps), '--device', args.device]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--channels', type=int, default=256)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=3, help='timed steps per process')
    parser.add_argument('--rounds', type=int, default=3, help='processes per variant')
    parser.add_argument('--device', default='cpu')
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
    result = {v: {k: statistics.median(run[k] for run in runs[v]) for k in ('time', 'peak_mb')}
              for v in VARIANTS}
    # None where the unfold baseline measured 0 (inputs too small to see)
    ratio = {k: result['ours'][k] / result['unfold'][k] if result['unfold'][k] > 0 else None
             for k in ('time', 'peak_mb')}
    print(f'\nACmix train step, C={args.channels}, input {args.batch}x{args.channels}x'
          f'{args.size}x{args.size}, {args.device}')
    print(f'{"variant":<8} {"time (s)":>10} {"peak (MiB)":>12}')
    for v in VARIANTS:
        print(f'{v:<8} {result[v]["time"]:>10.3f} {result[v]["peak_mb"]:>12.1f}')
    print(f'{"ratio":<8} ' + ' '.join(f'{"n/a":>{w}}' if ratio[k] is None else
                                      f'{ratio[k]:>{w}.2f}x'
                                      for k, w in (('time', 10), ('peak_mb', 11))))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), result=result, ratio=ratio, runs=runs), f, indent=2)
    return ratio


if __name__ == '__main__':
    main()
