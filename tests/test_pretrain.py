"""ImageNet pre-training recipes and the pre-train -> detect/segment path.

Every ``configs/*/*in1k*.py`` builds an mmpretrain classifier around one of
our backbones; every SEM/SPANet/ACmix detection/segmentation config names
the recipe that produces its backbone (``pretrain_config``), has exactly its
architecture, and loads its checkpoint through ``init_cfg`` with every
backbone tensor; and a real (2-iteration) pre-training run through
``tools/train.py`` feeds the demo detector.
"""
import copy
import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmsplitattn.engine import build_model

from conftest import ROOT, run_tool

PRETRAIN_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*_in1k.py')))
TRANSFER_CONFIGS = sorted(
    p for method in ('sem', 'spanet', 'acmix', 'demo')
    for p in glob.glob(osp.join(ROOT, 'configs', method, '*.py'))
    if p not in PRETRAIN_CONFIGS and 'pretrain_config = ' in open(p).read())
# Backbone arguments that say how a task uses the network, not which weights
# it has: they may differ between a recipe and the configs that load it.
USAGE_KEYS = {'out_indices', 'norm_eval', 'frozen_stages', 'strides', 'dilations',
              'contract_dilation', 'init_cfg', 'pretrained', 'with_cp'}
# Arguments whose default the recipes and the loaders leave implicit.
DEFAULTS = {'num_stages': 4, 'style': 'pytorch'}


def _rel(path):
    return osp.relpath(path, ROOT)


@functools.lru_cache(maxsize=None)
def _load_cached(path):
    return Config.fromfile(path)


def _load(path):
    """Config.fromfile(path), parsed once per session (a fresh copy each call)."""
    return copy.deepcopy(_load_cached(osp.join(ROOT, path)))


def _build(cfg, part=None):
    """The config's model (or ``cfg.model[part]``), built in its default scope's registry."""
    if part is not None:
        cfg = Config(dict(default_scope=cfg.default_scope, model=cfg.model[part]))
    return build_model(cfg)


def _architecture(backbone_cfg):
    """The backbone arguments that decide its weights (SyncBN counts as BN)."""
    arch = {**DEFAULTS, **{k: v for k, v in backbone_cfg.items() if k not in USAGE_KEYS}}
    norm = dict(arch.get('norm_cfg', dict(type='BN', requires_grad=True)))
    if norm['type'] == 'SyncBN':
        norm['type'] = 'BN'
    arch['norm_cfg'] = norm
    return arch


def _pretrain_cfg(cfg):
    return _load(cfg.pretrain_config)


def _assert_backbone_loaded(backbone, checkpoint_state):
    """Every backbone entry of the checkpoint is in ``backbone``, equal, and
    the backbone has nothing the checkpoint lacks."""
    expected = {k[len('backbone.'):]: v for k, v in checkpoint_state.items()
                if k.startswith('backbone.')}
    state = backbone.state_dict()
    assert set(state) == set(expected), (
        f'missing from checkpoint: {sorted(set(state) - set(expected))[:5]}, '
        f'unexpected: {sorted(set(expected) - set(state))[:5]}')
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_recipes_found():
    names = {_rel(p) for p in PRETRAIN_CONFIGS}
    assert {'configs/sem/sem-resnet50_8xb32_in1k.py',
            'configs/sem/sem-resnetv1c101_8xb32_in1k.py',
            'configs/spanet/spanet-resnet50_8xb32_in1k.py',
            'configs/spanet/spanet-resnetv1c101_8xb32_in1k.py',
            'configs/acmix/acmix-resnet50_8xb16-coslr-90e_in1k.py',
            'configs/acmix/acmix-resnetv1c50_8xb16-coslr-90e_in1k.py',
            'configs/acmix/acmix-resnetv1c101_8xb16-coslr-90e_in1k.py',
            'configs/demo/sem-resnet14_demo_in1k.py'} <= names
    # every SEM/SPANet/ACmix detection and segmentation config names one
    for method in ('sem', 'spanet', 'acmix'):
        for path in glob.glob(osp.join(ROOT, 'configs', method, '*.py')):
            if path not in PRETRAIN_CONFIGS:
                assert path in TRANSFER_CONFIGS, f'{_rel(path)} names no pretrain_config'


@pytest.mark.parametrize('path', PRETRAIN_CONFIGS, ids=_rel)
def test_recipe_builds(path):
    """An mmpretrain ImageClassifier around our backbone, its head fed by
    the last stage, from ``default_scope='mmpretrain'``."""
    cfg = _load(path)
    assert cfg.default_scope == 'mmpretrain'
    model = _build(cfg)
    assert type(model).__name__ == 'ImageClassifier'
    assert type(model.backbone).__module__.startswith('mmsplitattn.')
    assert tuple(model.backbone.out_indices) == (3, )
    assert model.head.fc.in_features == 2048
    assert model.head.fc.out_features == cfg.model.head.num_classes
    if 'demo' in path:  # small enough to run here
        with torch.no_grad():
            assert model(torch.randn(2, 3, 96, 96), mode='tensor').shape == (2, 3)


@pytest.mark.parametrize('path', TRANSFER_CONFIGS, ids=_rel)
def test_loader_matches_its_recipe(path):
    """Same architecture as the recipe, and the checkpoint path is the one
    the recipe writes: ``<work dir>/epoch_<max_epochs>.pth``."""
    cfg = _load(path)
    pre = _pretrain_cfg(cfg)
    assert _architecture(cfg.model.backbone) == _architecture(pre.model.backbone)
    init = cfg.model.backbone.init_cfg
    assert init == dict(type='Pretrained', checkpoint=cfg.pretrained_checkpoint,
                        prefix='backbone.')
    assert cfg.model.get('pretrained') is None  # mmseg's would replace init_cfg
    name = osp.splitext(osp.basename(cfg.pretrain_config))[0]
    work_dir = 'work_dirs/demo_pretrain/' if 'demo' in path else 'work_dirs/'
    assert cfg.pretrained_checkpoint == f'{work_dir}{name}/epoch_{pre.train_cfg.max_epochs}.pth'


_CHECKPOINTS = {}


def _recipe_checkpoint(pre_path, tmp_dir):
    """A checkpoint of the recipe's classifier with every tensor randomised
    (so equality after loading means loaded), saved once per recipe."""
    if pre_path not in _CHECKPOINTS:
        model = _build(_load(pre_path))
        g = torch.Generator().manual_seed(0)
        state = {k: (torch.rand(v.shape, generator=g) if v.is_floating_point() else v + 3)
                 for k, v in model.state_dict().items()}
        path = osp.join(tmp_dir, osp.basename(pre_path).replace('.py', '.pth'))
        torch.save(dict(meta=dict(), state_dict=state), path)
        _CHECKPOINTS[pre_path] = path, state
    return _CHECKPOINTS[pre_path]


@pytest.mark.parametrize('path', TRANSFER_CONFIGS, ids=_rel)
def test_loader_takes_every_backbone_tensor(path, tmp_path_factory):
    """Build the detector's/segmentor's backbone (where its ``init_cfg``
    lives; the heads are left out for time, and the end-to-end test below
    goes through a whole detector) pointing at a recipe checkpoint; after
    ``init_weights`` it is that checkpoint's backbone."""
    cfg = _load(path)
    ckpt, state = _recipe_checkpoint(osp.join(ROOT, cfg.pretrain_config),
                                     str(tmp_path_factory.getbasetemp()))
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    if cfg.model.backbone.norm_cfg.type == 'SyncBN':  # no process group on CPU
        cfg.model.backbone.norm_cfg.type = 'BN'
    backbone = _build(cfg, 'backbone')
    backbone.init_weights()
    _assert_backbone_loaded(backbone, state)


@pytest.mark.slow
def test_pretraining_run_feeds_the_demo_detector(demo_root):
    """tools/train.py runs the demo recipe for 2 iterations (the fixture's
    12 classification images, batch 6) and writes a checkpoint; the demo
    Mask R-CNN's init_cfg loads every backbone tensor of it."""
    pre_cfg = osp.join(ROOT, 'configs', 'demo', 'sem-resnet14_demo_in1k.py')
    work = demo_root / 'pretrain'
    run_tool(['tools/train.py', pre_cfg, '--work-dir', str(work), '--cfg-options',
              'train_dataloader.dataset.indices=12', 'train_dataloader.batch_size=6',
              'train_cfg.max_epochs=1',
              'train_dataloader.persistent_workers=False', 'randomness.seed=0'],
             cwd=demo_root)
    ckpt = work / 'epoch_1.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 2
    cfg = _load(osp.join(ROOT, 'configs', 'demo', 'maskrcnn_sem_demo_in1k-pretrained.py'))
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = _build(cfg)
    model.init_weights()
    _assert_backbone_loaded(model.backbone, state['state_dict'])
