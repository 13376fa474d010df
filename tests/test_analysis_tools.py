"""tools/analysis_tools on small inputs (behaviour, not timings)."""
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))


@pytest.mark.slow
def test_get_flops_resnest50_matches_paper():
    from get_flops import complexity, format_table
    result = complexity(osp.join(ROOT, 'configs', 'maskrcnn_resnest50.py'), (224, 224))
    assert abs(result['backbone']['params'] / 1e6 - 25.4) < 0.1  # 27.5M minus the fc
    assert abs(result['backbone']['flops'] / 1e9 - 5.39) < 0.1   # paper: 5.39 GFLOPs at 224
    assert [s['name'] for s in result['stages']] == ['stem', 'layer1', 'layer2', 'layer3',
                                                     'layer4']
    assert sum(s['params'] for s in result['stages']) == result['backbone']['params']
    assert result['model']['flops'] > result['backbone']['flops']
    assert 'backbone.layer3' in format_table(result)


@pytest.mark.slow
def test_get_flops_cli_segmentor(tmp_path):
    out = tmp_path / 'flops.json'
    proc = run_tool(['tools/analysis_tools/get_flops.py',
                     osp.join(ROOT, 'configs', 'demo', 'fcn_resnest_demo.py'),
                     '--shape', '64', '128', '--json', str(out)], cwd=tmp_path)
    assert 'GFLOPs' in proc.stdout
    assert json.loads(out.read_text())['model']['params'] > 0


def test_get_flops_acmix_resnet50():
    from get_flops import complexity
    result = complexity(osp.join(ROOT, 'configs', 'acmix',
                                 'mask-rcnn_acmix50_fpn_syncbn-backbone+head_ms-1x_coco.py'), (224, 224),
                        backbone_only=True)
    assert 'model' not in result
    # README: 18.6M with the 1000-class fc (2.05M), 3.6 GFLOPs. The tracer counts
    # what this formulation multiplies: the convolutions and, per 8x8 query block,
    # the logits and weighted sums over the keys its windows cover (196 per query
    # at 7x7, of which each query keeps 49), so more than the paper's figure.
    assert abs(result['backbone']['params'] / 1e6 - (18.6 - 2.05)) < 0.4
    assert 3.9 < result['backbone']['flops'] / 1e9 < 4.4


def test_analyze_logs_plot_curve(tmp_path):
    from analyze_logs import plot_curve
    log = tmp_path / 'run' / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    rows = [dict(loss=1.0 / (i + 1), step=i + 1) for i in range(10)]
    rows.append({'coco/bbox_mAP': 0.5, 'step': 1})
    log.write_text('\n'.join(json.dumps(r) for r in rows))
    out = plot_curve([str(tmp_path)], ['loss', 'coco/bbox_mAP'], str(tmp_path / 'c.png'))
    assert osp.getsize(out) > 1000
    with pytest.raises(KeyError, match="no log has the key 'mIoU'"):
        plot_curve([str(log)], ['mIoU'], str(tmp_path / 'd.png'))


@pytest.mark.slow
def test_benchmark_backbones_runs(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool(['tools/analysis_tools/benchmark_backbones.py', '--models', 'ours-resnest50',
                     'mmdet-resnest50', '--batch', '2', '--size', '32', '--rounds', '1',
                     '--json', str(out)], cwd=tmp_path)
    assert 'ratios to mmdet-resnest50' in proc.stdout
    result = json.loads(out.read_text())['result']
    assert result['mmdet-resnest50']['ratio']['train'] == 1.0
    ours = result['ours-resnest50']
    assert all(ours[k] > 0 for k in ('infer', 'fused', 'train', 'train_cp'))
    assert ours['peak_mb'] >= 0 and ours['peak_cp_mb'] >= 0


def test_benchmark_gives_no_figure_where_a_model_has_no_with_cp():
    from benchmark_backbones import MODELS
    assert MODELS['timm-resnest50d'](with_cp=True) is None


@pytest.mark.slow
def test_benchmark_acmix_runs(tmp_path):
    from benchmark_acmix import main
    ratio = main(['--channels', '16', '--size', '8', '--steps', '1', '--rounds', '1',
                  '--json', str(tmp_path / 'a.json')])
    assert set(ratio) == {'time', 'peak_mb'}


@pytest.mark.parametrize('backbone,figures', [
    ('resnest', ['split_attention.png']),
    ('sem', ['sem_decisions.png']),
    ('spanet', ['spanet_positions.png']),
    ('acmix', ['acmix_rates.png', 'acmix_window.png']),
])
def test_visualize_attention(demo_root, tmp_path, backbone, figures):
    from visualize_attention import visualize

    from mmsplitattn.engine import build_model
    config = osp.join(ROOT, 'configs', 'demo', f'maskrcnn_{backbone}_demo.py')
    model = build_model(Config.fromfile(config))
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('circle', 'square', 'triangle')))), ckpt)
    image = str(demo_root / 'data' / 'demo' / 'coco' / 'val2017' / '000000000001.jpg')
    written = visualize(config, str(ckpt), image, str(tmp_path / 'vis'), pixel=(40, 60))
    assert [osp.basename(p) for p in written] == figures
    assert all(osp.getsize(p) > 1000 for p in written)


def test_visualize_attention_rejects_plain_backbones(demo_root, tmp_path):
    from visualize_attention import visualize
    cfg = tmp_path / 'plain.py'
    cfg.write_text(f"_base_ = '{ROOT}/configs/demo/maskrcnn_resnest_demo.py'\n"
                   "model = dict(backbone=dict(_delete_=True, type='ResNet', depth=18,\n"
                   "             norm_cfg=dict(type='BN')), neck=dict(in_channels=[64, 128, 256, 512]))\n")
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(str(cfg)).model)
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'p.pth')
    image = str(demo_root / 'data' / 'demo' / 'coco' / 'val2017' / '000000000001.jpg')
    with pytest.raises(ValueError, match='has no Split-Attention, SEM, SPA or ACmix module'):
        visualize(str(cfg), str(tmp_path / 'p.pth'), image, str(tmp_path / 'vis'))
