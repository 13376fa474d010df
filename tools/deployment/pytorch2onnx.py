"""Export a config's network to ONNX and check it with onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] [--shape H W]
        [--out FILE] [--opset 11] [--dynamo] [--check-shape H W]
        [--tolerance 1e-4] [--cfg-options k=v ...]

What is exported:

* a detection config (mmdet): the backbone and neck, image -> tuple of
  feature maps (the box/mask heads and their post-processing are
  mmdeploy's business);
* a segmentation config (mmseg): the whole segmentor in ``tensor`` mode,
  image -> segmentation logits;
* a classification config (mmpretrain): the classifier in ``tensor`` mode,
  image -> class scores.

The input is the preprocessed image (normalised, as the model's
``data_preprocessor`` gives it), with dynamic batch, height and width. The
legacy (TorchScript-based) exporter runs under ``torch.no_grad()`` at opset 11
by default, as mmdeploy does (its deploy configs' ``onnx_config``), so the file
runs on the runtimes mmdeploy targets; every backbone also exports at 13 and
17. ``--dynamo`` uses ``torch.onnx.export(dynamo=True)``, whose lowest opset is
18 (a lower ``--opset`` becomes 18). The whole detector (heads and
post-processing) is exported with mmdeploy: tools/deployment/mmdeploy_export.py
and docs/deployment.md. The file is checked with
onnxruntime at the export shape and at ``--check-shape``; the largest
difference to PyTorch, relative to the largest output value, is printed and
must be at most ``--tolerance``, or the tool fails (and removes the file).
SyncBN becomes BN (inference is the same).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction

from mmsplitattn.engine import build_model, task_of, write_atomically


class BackboneNeck(nn.Module):
    """A detector's feature extractor: image (B, 3, H, W) -> feature maps."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.backbone = detector.backbone
        self.neck = detector.neck if getattr(detector, 'with_neck', False) else None

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        return tuple(self.neck(feats)) if self.neck is not None else tuple(feats)


class TensorMode(nn.Module):
    """A segmentor's / classifier's raw ``tensor``-mode forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor')


def build_exportable(config: str, checkpoint: Optional[str] = None,
                     cfg_options: Optional[dict] = None):
    """(task, module to export, in eval mode on the CPU)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config!r} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task = task_of(cfg)
    model = build_model(cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model = revert_sync_batchnorm(model).eval()
    wrapped = BackboneNeck(model) if task == 'det' else TensorMode(model)
    return task, wrapped.eval()


def _outputs(out) -> List[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def export(module: nn.Module, path: str, shape: Sequence[int], opset: int = 17,
           dynamo: bool = False) -> None:
    """Write ``module`` to ``path`` for a (B, 3, H, W) input, B/H/W dynamic."""
    x = torch.randn(1, 3, *shape)
    if dynamo:
        dims = ({0: torch.export.Dim('batch', max=1024), 2: torch.export.Dim.AUTO,
                 3: torch.export.Dim.AUTO}, )
        program = torch.onnx.export(module, (x, ), dynamo=True, dynamic_shapes=dims,
                                    opset_version=max(opset, 18))
        program.save(path)
        return
    with torch.no_grad():
        n_out = len(_outputs(module(x)))
        torch.onnx.export(
            module, (x, ), path, dynamo=False, opset_version=opset, input_names=['input'],
            output_names=[f'output{i}' for i in range(n_out)],
            dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                          **{f'output{i}': {0: 'batch', 2: f'height{i}', 3: f'width{i}'}
                             for i in range(n_out)}})


def check(module: nn.Module, path: str, shapes: Sequence[Sequence[int]]) -> float:
    """Largest relative difference between onnxruntime and PyTorch over the
    outputs, at each (H, W) of ``shapes``."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    worst = 0.0
    for shape in shapes:
        x = torch.randn(1, 3, *shape)
        with torch.no_grad():
            expected = [o.numpy() for o in _outputs(module(x))]
        got = session.run(None, {name: x.numpy()})
        if len(got) != len(expected):
            raise RuntimeError(f'onnxruntime gave {len(got)} outputs, PyTorch {len(expected)}')
        for i, (a, e) in enumerate(zip(got, expected)):
            if a.shape != e.shape:
                raise RuntimeError(f'output {i} at {tuple(shape)}: onnxruntime shape '
                                   f'{a.shape}, PyTorch {e.shape}')
            diff = float(np.abs(a - e).max() / max(float(np.abs(e).max()), 1e-6))
            print(f'  {tuple(shape)} output {i} {tuple(e.shape)}: max relative difference '
                  f'{diff:.2e}')
            worst = max(worst, diff)
    return worst


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a model to ONNX and check it')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (default: initial weights)')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1344], metavar=('H', 'W'),
                        help='input height and width of the export')
    parser.add_argument('--check-shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='a second input size to check (default: 3/4 of --shape)')
    parser.add_argument('--out', help='ONNX file (default: <config name>.onnx)')
    parser.add_argument('--opset', type=int, default=11,
                        help="ONNX opset of the legacy exporter (default: mmdeploy's)")
    parser.add_argument('--dynamo', action='store_true', help='the torch.export-based exporter')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest relative difference accepted')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value pairs')
    args = parser.parse_args(argv)
    for name in ('shape', 'check_shape'):
        value = getattr(args, name)
        if value is not None and min(value) < 1:
            parser.error(f'--{name.replace("_", "-")} must be positive, got {value}')
    return args


def main(argv=None) -> float:
    args = parse_args(argv)
    out = args.out or osp.splitext(osp.basename(args.config))[0] + '.onnx'
    check_shape = args.check_shape or [max(1, s * 3 // 4) for s in args.shape]
    task, module = build_exportable(args.config, args.checkpoint, args.cfg_options)
    print(f'exporting the {"backbone + neck" if task == "det" else "whole model"} of '
          f'{args.config} at {args.shape[0]}x{args.shape[1]} '
          f'({"dynamo" if args.dynamo else "legacy"} exporter) to {out}')
    result = {}

    def export_and_check(tmp):  # renamed to ``out`` only once it passes
        export(module, tmp, args.shape, args.opset, args.dynamo)
        print('checking with onnxruntime:')
        result['worst'] = worst = check(module, tmp, [args.shape, check_shape])
        if not worst <= args.tolerance:
            raise RuntimeError(f'onnxruntime differs from PyTorch by {worst:.2e} (relative), '
                               f'more than --tolerance {args.tolerance:g}')

    write_atomically(out, export_and_check)
    worst = result['worst']
    print(f'{out}: max relative difference {worst:.2e} (tolerance {args.tolerance:g})')
    return worst


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f'pytorch2onnx: {e}')
