"""Parameters and FLOPs of a config's backbone (per stage) and whole model.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--json FILE]

FLOPs are counted by MMEngine's ``FlopAnalyzer`` (one multiply-add = 1
FLOP, as mmdet/mmseg report; element-wise operations are not counted). The
whole detector is run in ``tensor`` mode on one H x W image (its RoI head
sees the test-time number of proposals), a segmentor on one image too.
"""
import argparse
import json
from collections import OrderedDict

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

from mmsplitattn.engine import build_model, task_of


def _count(module, inputs):
    analysis = FlopAnalyzer(module, inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def _params(module):
    return sum(p.numel() for p in module.parameters())


class TensorMode(torch.nn.Module):
    """The model's raw ``tensor``-mode forward on an image tensor, as a module
    for the tracer (which takes tensors only: data samples are bound here)."""

    def __init__(self, model, data_samples=None):
        super().__init__()
        self.model, self.data_samples = model, data_samples

    def forward(self, x):
        return self.model._forward(x, self.data_samples)


def data_samples(task, h, w):
    """What a detector's tensor-mode forward needs beside the image."""
    if task == 'seg':
        return None
    from mmdet.structures import DetDataSample
    return [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                        batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))]


def complexity(config, shape=(800, 1333), backbone_only=False):
    """{'backbone': {...}, 'model': {...}, 'stages': [...]} for a config file
    ('model' is left out with ``backbone_only``)."""
    cfg = Config.fromfile(config)
    task, model = task_of(cfg, tasks=('det', 'seg')), build_model(cfg).eval()
    h, w = shape
    backbone = model.backbone
    with torch.no_grad():
        bb = _count(backbone, (torch.randn(1, 3, h, w), ))
        by_module = bb.by_module()
        stem = 'stem' if getattr(backbone, 'deep_stem', False) else 'conv1'
        stages = []
        for name in ['stem'] + list(getattr(backbone, 'res_layers', [])):
            if name == 'stem':
                mods = [stem] if stem == 'stem' else ['conv1', getattr(backbone, 'norm1_name', 'bn1')]
                params = sum(_params(getattr(backbone, m)) for m in mods)
                flops = sum(by_module.get(m, 0) for m in mods)
            else:
                params, flops = _params(getattr(backbone, name)), by_module.get(name, 0)
            stages.append(OrderedDict(name=name, params=params, flops=flops))
        result = dict(config=config, shape=list(shape), stages=stages,
                      backbone=dict(params=_params(backbone), flops=bb.total()))
        if not backbone_only:
            whole = _count(TensorMode(model, data_samples(task, h, w)),
                           (torch.randn(1, 3, h, w), ))
            result['model'] = dict(params=_params(model), flops=whole.total())
    return result


def format_table(result):
    rows = [('part', 'params (M)', 'GFLOPs')]
    for s in result['stages']:
        rows.append((f'  backbone.{s["name"]}', f'{s["params"] / 1e6:.2f}', f'{s["flops"] / 1e9:.2f}'))
    for part in [p for p in ('backbone', 'model') if p in result]:
        rows.append((part, f'{result[part]["params"] / 1e6:.2f}', f'{result[part]["flops"] / 1e9:.2f}'))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f'{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}' for r in rows]
    h, w = result['shape']
    return f'{result["config"]} at {h}x{w}\n' + '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config')
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    parser.add_argument('--backbone-only', action='store_true',
                        help='skip the whole-model count (slow for big RoI heads)')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args(argv)
    result = complexity(args.config, tuple(args.shape), args.backbone_only)
    print(format_table(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
