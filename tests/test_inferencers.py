"""mmdet's and mmseg's inference APIs with our configs and an MMEngine checkpoint.

The checkpoints are written the way ``Runner.save_checkpoint`` writes them at
the end of ``make demo`` (meta with dataset_meta, state_dict, message_hub with
history buffers), from models built from the demo configs: the APIs only read
them, so training first would add minutes and prove nothing more.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import get_state_dict, weights_to_cpu

from mmsplitattn.engine import build_model as build_in_scope

from conftest import ROOT

DET_CFG = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_resnest_demo.py')
SEG_CFG = osp.join(ROOT, 'configs', 'demo', 'fcn_resnest_demo.py')


def save_runner_checkpoint(model, dataset_meta: dict, path: str) -> str:
    """A checkpoint with the keys and object types MMEngine's runner saves."""
    hub = MessageHub.get_instance(f'ckpt-{osp.basename(path)}')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('epoch', 12)
    checkpoint = dict(
        meta=dict(epoch=12, iter=720, seed=0, experiment_name='demo',
                  dataset_meta=dataset_meta, mmengine_version='0.10.7'),
        state_dict=weights_to_cpu(get_state_dict(model)),
        message_hub=hub.state_dict())
    torch.save(checkpoint, path)
    return path


def build_model(config: str):
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    return cfg, build_in_scope(cfg)


@pytest.fixture(scope='module')
def det_checkpoint(tmp_path_factory):
    cfg, model = build_model(DET_CFG)
    meta = dict(classes=tuple(cfg.metainfo['classes']), palette=cfg.metainfo['palette'])
    path = str(tmp_path_factory.mktemp('det') / 'epoch_12.pth')
    return save_runner_checkpoint(model, meta, path), model.state_dict()


@pytest.fixture(scope='module')
def seg_checkpoint(tmp_path_factory):
    from mmseg.datasets import CityscapesDataset
    _, model = build_model(SEG_CFG)
    meta = dict(classes=CityscapesDataset.METAINFO['classes'],
                palette=CityscapesDataset.METAINFO['palette'])
    path = str(tmp_path_factory.mktemp('seg') / 'iter_300.pth')
    return save_runner_checkpoint(model, meta, path), model.state_dict()


def write_image(path, h: int, w: int) -> str:
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 90, np.uint8)
    cv2.circle(img, (w // 3, h // 2), min(h, w) // 5, (220, 20, 60), -1)
    img = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return str(path)


def assert_loaded(model, saved_state):
    state = model.state_dict()
    for name in ('backbone.stem.0.weight', 'backbone.layer1.0.conv2.fc1.weight'):
        assert torch.equal(state[name].cpu(), saved_state[name]), name


def test_init_detector_and_det_inferencer(det_checkpoint, tmp_path):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    ckpt, saved = det_checkpoint
    image = write_image(tmp_path / 'shapes.jpg', 160, 160)

    model = init_detector(DET_CFG, ckpt, device='cpu')
    assert type(model.backbone).__module__.startswith('mmsplitattn.')
    assert model.dataset_meta['classes'] == ('circle', 'square', 'triangle')
    assert_loaded(model, saved)
    result = inference_detector(model, image)
    pred = result.pred_instances
    assert pred.bboxes.shape[1:] == (4, ) and len(pred.scores) == len(pred.labels) <= 20
    assert pred.masks.shape[1:] == (160, 160)

    inferencer = DetInferencer(model=DET_CFG, weights=ckpt, device='cpu')
    assert_loaded(inferencer.model, saved)
    out = inferencer(image, out_dir=str(tmp_path / 'out'), pred_score_thr=0.0, no_save_pred=False)
    prediction = out['predictions'][0]
    assert {'labels', 'scores', 'bboxes', 'masks'} <= set(prediction)
    assert all(label in (0, 1, 2) for label in prediction['labels'])
    assert osp.isfile(tmp_path / 'out' / 'vis' / 'shapes.jpg')
    assert osp.isfile(tmp_path / 'out' / 'preds' / 'shapes.json')


def test_init_model_and_mmseg_inferencer(seg_checkpoint, tmp_path):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    ckpt, saved = seg_checkpoint
    image = write_image(tmp_path / 'street.png', 128, 256)

    model = init_model(SEG_CFG, ckpt, device='cpu')
    assert type(model.backbone).__module__.startswith('mmsplitattn.')
    assert model.dataset_meta['classes'][0] == 'road'
    assert_loaded(model, saved)
    result = inference_model(model, image)
    seg = result.pred_sem_seg.data
    assert seg.shape == (1, 128, 256) and int(seg.max()) < 19

    inferencer = MMSegInferencer(model=SEG_CFG, weights=ckpt, device='cpu')
    assert_loaded(inferencer.model, saved)
    out = inferencer(image, out_dir=str(tmp_path / 'out'))
    assert out['predictions'].shape == (128, 256)
    assert osp.isfile(tmp_path / 'out' / 'vis' / 'street.png')
    saved_pred = cv2.imread(str(tmp_path / 'out' / 'pred' / '00000000_pred.png'),
                            cv2.IMREAD_UNCHANGED)
    assert np.array_equal(saved_pred, out['predictions'])
