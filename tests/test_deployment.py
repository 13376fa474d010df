"""tools/deployment/pytorch2onnx.py on the demo configs."""
import os.path as osp
import sys

import onnx
import pytest
import torch

from conftest import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
from pytorch2onnx import build_exportable, main  # noqa: E402

DET = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_resnest_demo.py')
SEG = osp.join(ROOT, 'configs', 'demo', 'fcn_resnest_demo.py')


def _checkpoint(config, path):
    _, module = build_exportable(config)
    model = module.model if hasattr(module, 'model') else module
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def test_detection_backbone_and_neck(tmp_path):
    out = tmp_path / 'det.onnx'
    worst = main([DET, '--shape', '96', '128', '--check-shape', '64', '80', '--out', str(out)])
    assert worst <= 1e-4
    graph = onnx.load(str(out)).graph
    assert len(graph.output) == 5  # the FPN levels
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ['batch', '', 'height', 'width']


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
