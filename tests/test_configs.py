"""Every config in configs/ builds its model and its dataloaders' pipelines."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope, init_default_scope

from conftest import ROOT

from mmsplitattn.engine import build_model

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    names = {osp.relpath(p, ROOT) for p in CONFIGS}
    assert {'configs/maskrcnn_resnest50.py',
            'configs/resnest/mask-rcnn_resnest101_fpn_syncbn-backbone+head_ms-1x_coco.py',
            'configs/resnest/fcn_resnest101-d8_4xb2-80k_cityscapes-512x1024.py',
            'configs/resnest/pspnet_resnest101-d8_4xb2-80k_cityscapes-512x1024.py',
            'configs/resnest/deeplabv3_resnest101-d8_4xb2-80k_cityscapes-512x1024.py',
            'configs/resnest/deeplabv3plus_resnest101-d8_4xb2-80k_cityscapes-512x1024.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope):
        init_default_scope(scope)
        model = build_model(cfg)
        assert type(model.backbone).__module__.startswith('mmsplitattn.'), \
            f'{path} builds {type(model.backbone)} instead of an mmsplitattn backbone'
        assert sum(p.numel() for p in model.parameters()) > 0
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            Compose(cfg[loader]['dataset']['pipeline'])
        assert 'data/' in cfg.train_dataloader.dataset.data_root
        if 'demo' in path:  # demo models are small enough to run here
            model.eval()
            with torch.no_grad():
                feats = model.extract_feat(torch.randn(1, 3, 64, 64))
            assert len(feats) > 0
