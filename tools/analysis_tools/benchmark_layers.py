"""The layer-level measurements behind the backbones' fast paths, each against
the plain PyTorch call it replaces, interleaved and repeated in one run:

* ``conv1x1``: forward + backward of the 1x1 convolutions of ResNeSt-50
  (batch 2, 224x224) as ``nn.Conv2d`` against ``conv_bn.conv2d`` (which runs
  maps of at most 14x14 as matmuls in CPU training);
* ``layout``: inference of the same convolutions in NCHW against
  channels_last (why CPU inference runs channels_last inside), and against
  ``conv_bn.conv_bn`` in channels_last (BN folded; maps of at most 14x14 as
  one GEMM);
* ``to_contiguous``: channels_last -> contiguous copy of the stage outputs,
  ``Tensor.contiguous`` against the row-block copy the backbones use.

    python tools/analysis_tools/benchmark_layers.py [--batch 2] [--size 224]
        [--rounds 9] [--json FILE]

The process keeps freed memory (``mmsplitattn.allocator.keep_freed_memory``):
with glibc's defaults the candidates would pay each other's page faults
(64->256 @56x56 measured 10.2 ms against 4.5 ms for the same call).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn

from mmsplitattn.allocator import keep_freed_memory
from mmsplitattn.models.backbones.resnet_base import _contiguous_by_rows
from mmsplitattn.models.layers.conv_bn import conv2d, conv_bn

# (Cin, Cout, stride of the map w.r.t. the input) of ResNeSt-50's 1x1 convs
CONV1X1 = [(64, 256, 4), (256, 64, 4), (128, 512, 8), (512, 128, 8), (256, 1024, 16),
           (1024, 256, 16), (512, 2048, 32), (1024, 2048, 32), (2048, 512, 32)]
STAGE_OUTPUTS = [(256, 4), (512, 8), (1024, 16), (2048, 32)]


def _median_ms(fns, rounds):
    """Median time (ms) of every callable in ``fns``, interleaved by rounds."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def _train_step(conv, x, run):
    def step():
        x.grad = None
        run(conv, x).sum().backward()
    return step


def bench_conv1x1(args):
    rows = []
    for cin, cout, stride in CONV1X1:
        side = args.size // stride
        conv = nn.Conv2d(cin, cout, 1, bias=False)
        x = torch.randn(args.batch, cin, side, side, requires_grad=True)
        t = _median_ms({'nn.Conv2d': _train_step(conv, x, lambda c, v: c(v)),
                        'conv2d': _train_step(conv, x, conv2d)}, args.rounds)
        rows.append(dict(layer=f'{cin}->{cout} @{side}x{side}', **t))
    return rows


def bench_layout(args):
    rows = []
    with torch.no_grad():
        for cin, cout, stride in CONV1X1:
            side = args.size // stride
            conv = nn.Conv2d(cin, cout, 1, bias=False)
            conv_cl = nn.Conv2d(cin, cout, 1, bias=False).to(memory_format=torch.channels_last)
            norm = nn.BatchNorm2d(cout).eval()
            x = torch.randn(args.batch, cin, side, side)
            x_cl = x.contiguous(memory_format=torch.channels_last)
            t = _median_ms({'NCHW': lambda: conv(x), 'channels_last': lambda: conv_cl(x_cl),
                            'conv_bn CL': lambda: conv_bn(conv_cl, norm, x_cl)}, args.rounds)
            rows.append(dict(layer=f'{cin}->{cout} @{side}x{side}', **t))
    return rows


def bench_to_contiguous(args):
    rows = []
    for channels, stride in STAGE_OUTPUTS:
        side = args.size // stride
        x = torch.randn(args.batch, channels, side, side).contiguous(
            memory_format=torch.channels_last)
        t = _median_ms({'contiguous()': x.contiguous, 'by rows': lambda: _contiguous_by_rows(x)},
                       args.rounds)
        rows.append(dict(layer=f'{channels} @{side}x{side}', **t))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error(f'--size must be at least 32 (stage 4 is size / 32), got {args.size}')
    keep_freed_memory()
    results = {}
    for name, bench in (('conv1x1 train step (ms)', bench_conv1x1),
                        ('1x1 conv inference by layout (ms)', bench_layout),
                        ('channels_last -> contiguous (ms)', bench_to_contiguous)):
        print(f'{name} ...', file=sys.stderr, flush=True)
        rows = results[name] = bench(args)
        keys = [k for k in rows[0] if k != 'layer']
        print(f'\n{name}, batch {args.batch}, {args.size}x{args.size}, median of {args.rounds}')
        print(f'{"layer":<22}' + ''.join(f'{k:>15}' for k in keys)
              + ''.join(f'{"ratio " + str(i + 2):>9}' for i in range(len(keys) - 1)))
        for r in rows:  # ratios of the 2nd, 3rd... column to the 1st
            print(f'{r["layer"]:<22}' + ''.join(f'{r[k]:>15.2f}' for k in keys)
                  + ''.join(f'{r[k] / r[keys[0]]:>9.2f}' for k in keys[1:]))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=2)
    return results


if __name__ == '__main__':
    main()
