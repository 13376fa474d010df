"""tools/deployment/pytorch2onnx.py on the demo configs (every backbone at
mmdeploy's opset 11, torch's default 17 on one), and
the run-time adaptations of tools/deployment/mmdeploy_export.py (the whole
mmdeploy export runs only where mmdeploy is installed: docs/deployment.md)."""
import io
import os.path as osp
import sys

import numpy as np
import onnx
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
import mmdeploy_export  # noqa: E402
from pytorch2onnx import build_exportable, main  # noqa: E402

DET = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_resnest_demo.py')
SEG = osp.join(ROOT, 'configs', 'demo', 'fcn_resnest_demo.py')


def demo_detector(backbone):
    return osp.join(ROOT, 'configs', 'demo', f'maskrcnn_{backbone}_demo.py')


def _checkpoint(config, path):
    _, module = build_exportable(config)
    model = module.model if hasattr(module, 'model') else module
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.mark.parametrize('backbone', [
    'resnest',
    *(pytest.param(b, marks=pytest.mark.slow) for b in ('sem', 'spanet', 'acmix'))])
def test_detection_backbone_and_neck_at_mmdeploys_opset(backbone, tmp_path):
    out = tmp_path / 'det.onnx'
    worst = main([demo_detector(backbone), '--shape', '96', '128', '--check-shape', '64', '80',
                  '--out', str(out)])
    assert worst <= 1e-4
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 11  # the default, mmdeploy's
    assert len(model.graph.output) == 5  # the FPN levels
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']


@pytest.mark.slow
def test_detection_backbone_and_neck_at_torchs_default_opset(tmp_path):
    """(The dynamo exporter, ~70 s on the whole detector's backbone and neck, is
    tested on the backbones in test_conformance.py.)"""
    out = tmp_path / 'det.onnx'
    worst = main([DET, '--shape', '96', '128', '--check-shape', '64', '80', '--out', str(out),
                  '--opset', '17'])
    assert worst <= 1e-4
    assert onnx.load(str(out)).opset_import[0].version == 17


def test_segmentor_with_a_checkpoint(tmp_path, capsys):
    ckpt = _checkpoint(SEG, tmp_path / 'seg.pth')
    out = tmp_path / 'seg.onnx'
    main([SEG, ckpt, '--shape', '64', '128', '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'whole model' in printed and 'max relative difference' in printed
    assert out.exists() and not (tmp_path / 'seg.onnx.part').exists()


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt = _checkpoint(DET, tmp_path / 'det.pth')
    out = tmp_path / 'seg.onnx'
    with pytest.raises(RuntimeError, match='unexpected key|size mismatch|missing keys'):
        main([SEG, ckpt, '--shape', '64', '64', '--out', str(out)])
    assert not out.exists()


def test_bad_shape_is_named():
    with pytest.raises(SystemExit):
        main([DET, '--shape', '0', '64'])


class _CastToLong(torch.autograd.Function):
    """An op whose ONNX symbolic calls ``symbolic_opset9._cast_Long`` as
    mmdeploy's RoIAlign symbolic does."""

    @staticmethod
    def forward(ctx, x):
        return x.long()

    @staticmethod
    def symbolic(g, x):
        from torch.onnx.symbolic_opset9 import _cast_Long
        return _cast_Long(g, x, False)


class _CastModule(torch.nn.Module):
    def forward(self, x):
        return _CastToLong.apply(x * 2)


def test_mmdeploy_adaptations_run_its_export_call_and_are_undone():
    import onnxruntime as ort
    import torch.onnx.symbolic_opset9 as opset9
    export, had_cast_long = torch.onnx.export, hasattr(opset9, '_cast_Long')
    x = torch.tensor([[0.6, 1.7, -2.2]])
    f = io.BytesIO()
    with mmdeploy_export.mmdeploy_on_this_torch():
        # mmdeploy's call: TorchScript-exporter arguments, no dynamo=
        torch.onnx.export(_CastModule(), (x, ), f, opset_version=11, input_names=['input'],
                          output_names=['output'], dynamic_axes={'input': {1: 'n'}})
    assert torch.onnx.export is export
    assert hasattr(opset9, '_cast_Long') == had_cast_long
    model = onnx.load_from_string(f.getvalue())
    assert model.opset_import[0].version == 11
    assert [n.op_type for n in model.graph.node][-1] == 'Cast'
    session = ort.InferenceSession(f.getvalue(), providers=['CPUExecutionProvider'])
    longer = torch.tensor([[0.6, 1.7, -2.2, 3.9]])
    (got, ) = session.run(None, {'input': longer.numpy()})
    assert got.dtype == np.int64 and (got == (longer * 2).long().numpy()).all()


# mmdeploy v1.3.1's configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py,
# its _base_ chain flattened (mmdeploy's wheel ships no configs).
ORT_INSTANCE_SEG_DYNAMIC = """
onnx_config = dict(
    type='onnx', export_params=True, keep_initializers_as_inputs=False, opset_version=11,
    save_file='end2end.onnx', input_names=['input'], output_names=['dets', 'labels', 'masks'],
    input_shape=None, optimize=True,
    dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                  'dets': {0: 'batch', 1: 'num_dets'}, 'labels': {0: 'batch', 1: 'num_dets'},
                  'masks': {0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'}})
codebase_config = dict(
    type='mmdet', task='ObjectDetection', model_type='end2end',
    post_processing=dict(score_threshold=0.05, confidence_threshold=0.005, iou_threshold=0.5,
                         max_output_boxes_per_class=200, pre_top_k=5000, keep_top_k=100,
                         background_label_id=-1, export_postprocess_mask=False))
backend_config = dict(type='onnxruntime')
"""


def _detector_checkpoint(config, path):
    """The whole detector at its initial weights, the RPN, box and mask
    classifiers redrawn N(0, 1) so that its scores and mask probabilities are
    spread, not tied."""
    from mmengine.config import Config

    from mmsplitattn.engine import build_model
    torch.manual_seed(0)
    model = build_model(Config.fromfile(config))
    model.init_weights()
    for layer in (model.rpn_head.rpn_cls, model.roi_head.bbox_head.fc_cls,
                  model.roi_head.mask_head.conv_logits):
        layer.weight.data.normal_(0, 1)
    model.roi_head.bbox_head.fc_cls.weight.data[-1] = 0  # background logit 0
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize('backbone', ['resnest', 'sem', 'spanet', 'acmix'])
def test_mmdeploy_exports_the_demo_detector(backbone, tmp_path):
    """The whole Mask R-CNN through mmdeploy.apis.torch2onnx at opset 11, run in
    onnxruntime: only in an environment with mmdeploy 1.3.1 (docs/deployment.md)."""
    pytest.importorskip('mmdeploy')
    deploy_cfg = tmp_path / 'instance-seg_onnxruntime_dynamic.py'
    deploy_cfg.write_text(ORT_INSTANCE_SEG_DYNAMIC)
    ckpt = _detector_checkpoint(demo_detector(backbone), tmp_path / 'det.pth')
    results = mmdeploy_export.main([demo_detector(backbone), ckpt, str(deploy_cfg),
                                    '--out', str(tmp_path / 'work'), '--shape', '96', '128',
                                    '--check-shape', '128', '80'])
    assert onnx.load(str(tmp_path / 'work' / 'end2end.onnx')).opset_import[0].version == 11
    for name in ('graph', 'graph at another size'):
        assert results[name]['labels_equal'] and results[name]['score'] <= 1e-4
    assert results['end to end']['detections'][0] > 0
