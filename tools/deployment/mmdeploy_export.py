"""Export a whole detector with mmdeploy and check the ONNX file with onnxruntime.

    python tools/deployment/mmdeploy_export.py CONFIG CHECKPOINT DEPLOY_CFG
        [--out DIR] [--img IMAGE | --shape H W] [--check-shape H W] [--opset N]
        [--topk 20] [--tolerance 1e-4]

``mmdeploy.apis.torch2onnx`` writes ``DIR/end2end.onnx`` (image -> ``dets``,
``labels``, ``masks`` for an instance-segmentation deploy config such as
mmdeploy's ``configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py``)
on the CPU. The file is then checked twice:

* graph: onnxruntime against mmdeploy's rewritten PyTorch model (what was
  exported) on the same pre-processed input, output by output, at the export
  image and at a second image of ``--check-shape``. Labels must be equal and
  the largest box and score differences (boxes relative to the image size)
  at most ``--tolerance``, or the tool fails;
* end to end: mmdeploy's onnxruntime wrapper against the PyTorch detector,
  both through ``test_step`` as ``mmdeploy.apis.inference_model`` and mmdet
  run them. mmdeploy rewrites the RPN post-processing (one NMS over all levels
  with a score threshold), so with untrained weights the two lists can differ
  in near-tied proposals; the tool prints how many of PyTorch's ``--topk``
  detections onnxruntime has (same label, box IoU >= 0.9) and their largest
  score difference, and does not fail on it.

The image is ``--img``, or a seeded random image of ``--shape`` (H W).

mmdeploy 1.3.1 predates torch 2.9; this tool adapts it at run time, in this
process only (mmdeploy's files are left as installed):

* torch >= 2.9 defaults ``torch.onnx.export`` to ``dynamo=True``; mmdeploy
  calls it with TorchScript-exporter arguments and no ``dynamo=``, so the
  export is run with ``dynamo=False``;
* torch >= 2.10 has no ``torch.onnx.symbolic_opset9._cast_Long``, which
  mmdeploy's RoIAlign symbolic imports; an equivalent (an ONNX ``Cast`` to
  int64) is provided.

Each is applied only if the installed torch needs it. And mmdeploy's function
rewriter fails on leaving its context (``KeyError: -1``) if a function was
``torch.fx.wrap``-ped during the export: it pops them off torch.fx's registry
as off a list, which is a dict in torch 2.x. The first call of
``torch.utils.checkpoint`` (ACmix's attention is recomputed with it) imports
modules that do that, so the tool makes that first call before the export.
See docs/deployment.md.
"""
import argparse
import contextlib
import copy
import functools
import inspect
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
import torch.utils.checkpoint
from mmengine.config import Config


@contextlib.contextmanager
def mmdeploy_on_this_torch() -> Iterator[None]:
    """The run-time adaptations mmdeploy 1.3.1 needs on recent torch (see the
    module docstring); the patches of torch.onnx are undone on exit."""
    import onnx
    import torch.onnx.symbolic_opset9 as opset9
    with torch.no_grad():  # its lazy imports, outside mmdeploy's RewriterContext
        torch.utils.checkpoint.checkpoint(torch.neg, torch.zeros(1), use_reentrant=False)
    export = torch.onnx.export
    dynamo = inspect.signature(export).parameters.get('dynamo')
    add_cast_long = not hasattr(opset9, '_cast_Long')
    if dynamo is not None and dynamo.default is True:
        torch.onnx.export = functools.partial(export, dynamo=False)
    if add_cast_long:
        opset9._cast_Long = lambda g, x, non_blocking: g.op(
            'Cast', x, to_i=onnx.TensorProto.INT64)
    try:
        yield
    finally:
        torch.onnx.export = export
        if add_cast_long:
            del opset9._cast_Long


def load_deploy_cfg(path: str, opset: Optional[int]) -> Config:
    if not osp.isfile(path):
        raise FileNotFoundError(f'deploy config {path!r} does not exist')
    cfg = Config.fromfile(path)
    if opset is not None:
        cfg.onnx_config.opset_version = opset
    return cfg


def random_image(shape: Sequence[int], seed: int) -> np.ndarray:
    """An (H, W, 3) uint8 BGR image of seeded noise."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def _ort_outputs(onnx_file: str, inputs: torch.Tensor) -> List[np.ndarray]:
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_file, providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: inputs.numpy()})


def compare_graph(task_processor, deploy_cfg: Config, checkpoint: str, onnx_file: str,
                  img: np.ndarray) -> Dict[str, float]:
    """onnxruntime vs mmdeploy's rewritten PyTorch model, on one image.

    Returns the output shapes' agreement, ``labels_equal`` and the largest
    differences: ``box`` (pixels, and ``box_rel`` relative to the larger input
    side), ``score`` and ``mask`` (probabilities).
    """
    from mmdeploy.core import RewriterContext, patch_model
    from mmdeploy.utils import IR, get_backend, get_input_shape, get_ir_config
    backend = get_backend(deploy_cfg).value
    model = task_processor.build_pytorch_model(checkpoint)
    data, inputs = task_processor.create_input(
        img, get_input_shape(deploy_cfg), data_preprocessor=model.data_preprocessor)
    patched = patch_model(model, cfg=deploy_cfg, backend=backend, ir=IR.ONNX)
    opset = get_ir_config(deploy_cfg).get('opset_version', 11)
    with RewriterContext(cfg=deploy_cfg, backend=backend, ir=IR.ONNX, opset=opset), \
            torch.no_grad():
        expected = [t.numpy() for t in patched(inputs, data['data_samples'], mode='predict')]
    got = _ort_outputs(onnx_file, inputs)
    shapes = [tuple(a.shape) for a in got] == [tuple(e.shape) for e in expected]
    result = dict(shape=tuple(inputs.shape[2:]), shapes_equal=shapes,
                  detections=(got[0].shape[1], expected[0].shape[1]))
    if not shapes:
        return result
    dets, labels = got[:2]
    box = float(np.abs(dets[..., :4] - expected[0][..., :4]).max(initial=0))
    result.update(
        labels_equal=bool((labels == expected[1]).all()), box=box,
        box_rel=box / max(inputs.shape[2:]),
        score=float(np.abs(dets[..., 4] - expected[0][..., 4]).max(initial=0)))
    if len(got) > 2:
        result['mask'] = float(np.abs(got[2] - expected[2]).max(initial=0))
    return result


def compare_end_to_end(task_processor, deploy_cfg: Config, checkpoint: str,
                       onnx_file: str, img: np.ndarray, topk: int) -> Dict[str, float]:
    """mmdeploy's onnxruntime wrapper vs the PyTorch detector, both through
    ``test_step``: how many of PyTorch's ``topk`` highest-scoring detections
    onnxruntime has (same label, box IoU >= 0.9), their largest score
    difference and smallest mask IoU."""
    from mmdeploy.utils import get_input_shape
    from mmdet.structures.bbox import bbox_overlaps
    data, _ = task_processor.create_input(img, get_input_shape(deploy_cfg))
    model = task_processor.build_pytorch_model(checkpoint)
    backend_model = task_processor.build_backend_model(
        [onnx_file], task_processor.update_data_preprocessor)
    with torch.no_grad():
        want = model.test_step(copy.deepcopy(data))[0].pred_instances
        got = backend_model.test_step(copy.deepcopy(data))[0].pred_instances
    want = want[want.scores.argsort(descending=True)[:topk]]
    result = dict(detections=(len(got), len(want)), matched=0, of=len(want))
    if not len(got) or not len(want):
        return result
    iou = bbox_overlaps(want.bboxes, got.bboxes)
    iou[want.labels[:, None] != got.labels[None, :]] = 0
    best_iou, best = iou.max(1)
    hit = best_iou >= 0.9
    result['matched'] = int(hit.sum())
    if hit.any():
        result['score'] = float((want.scores[hit] - got.scores[best[hit]]).abs().max())
        if 'masks' in want and 'masks' in got:
            a, b = want.masks[hit].flatten(1).bool(), got.masks[best[hit]].flatten(1).bool()
            mask_iou = (a & b).sum(1) / (a | b).sum(1).clamp(min=1)
            result['mask_iou'] = float(mask_iou.min())
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a detector with mmdeploy and check it with onnxruntime')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint of the model')
    parser.add_argument('deploy_cfg', help="mmdeploy deploy config (an onnxruntime one)")
    parser.add_argument('--out', default='mmdeploy_export',
                        help='work directory; the model is written to OUT/end2end.onnx')
    parser.add_argument('--img', help='image file (default: a random image of --shape)')
    parser.add_argument('--shape', type=int, nargs=2, default=[160, 240], metavar=('H', 'W'),
                        help='size of the random export image')
    parser.add_argument('--check-shape', type=int, nargs=2, default=[200, 136],
                        metavar=('H', 'W'), help='size of the second, random image')
    parser.add_argument('--opset', type=int,
                        help="override the deploy config's onnx_config.opset_version")
    parser.add_argument('--topk', type=int, default=20,
                        help='highest-scoring detections compared end to end')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest graph difference accepted (boxes relative to the '
                             'image size, scores absolute)')
    args = parser.parse_args(argv)
    for name in ('shape', 'check_shape'):
        if min(getattr(args, name)) < 1:
            parser.error(f'--{name.replace("_", "-")} must be positive, '
                         f'got {getattr(args, name)}')
    if args.topk < 1:
        parser.error(f'--topk must be positive, got {args.topk}')
    return args


def _format(result: Dict) -> str:
    return ', '.join(f'{k} {v:.2e}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in result.items())


def main(argv=None) -> Dict[str, Dict]:
    args = parse_args(argv)
    import mmcv
    from mmdeploy.apis import build_task_processor, torch2onnx
    for path in (args.config, args.checkpoint) + ((args.img, ) if args.img else ()):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path!r} does not exist')
    deploy_cfg = load_deploy_cfg(args.deploy_cfg, args.opset)
    model_cfg = Config.fromfile(args.config)
    img = mmcv.imread(args.img) if args.img else random_image(args.shape, seed=0)
    onnx_file = osp.join(args.out, 'end2end.onnx')
    print(f'mmdeploy torch2onnx: {args.config} at opset '
          f'{deploy_cfg.onnx_config.opset_version} -> {onnx_file}')
    with mmdeploy_on_this_torch():
        torch2onnx(img, args.out, 'end2end.onnx', deploy_cfg, model_cfg, args.checkpoint,
                   device='cpu')
    task_processor = build_task_processor(model_cfg, deploy_cfg, 'cpu')
    results = {}
    for name, image in (('graph', img), ('graph at another size',
                                         random_image(args.check_shape, seed=1))):
        results[name] = compare_graph(task_processor, deploy_cfg, args.checkpoint,
                                      onnx_file, image)
        print(f'{name} (onnxruntime vs mmdeploy\'s PyTorch): {_format(results[name])}')
    results['end to end'] = compare_end_to_end(task_processor, deploy_cfg, args.checkpoint,
                                               onnx_file, img, args.topk)
    print(f'end to end (onnxruntime vs PyTorch test_step): {_format(results["end to end"])}')
    for name in ('graph', 'graph at another size'):
        r = results[name]
        if not r['shapes_equal'] or not r['labels_equal'] or \
                not max(r['box_rel'], r['score']) <= args.tolerance:
            raise RuntimeError(f'{name}: onnxruntime differs from PyTorch ({_format(r)}), '
                               f'more than --tolerance {args.tolerance:g}')
    return results


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f'mmdeploy_export: {e}')
