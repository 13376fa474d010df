# Mask R-CNN FPN with SEM-ResNet-50 on COCO 2017: the recipe of
# maskrcnn_resnest50.py (SyncBN backbone + head, multi-scale 1x, 8x2) with a
# torchvision-layout ResNet-50 whose bottlenecks end in a Switchable
# Excitation Module. No published reference: SEM was only evaluated on CIFAR.
#
# Pre-training: no SEM-ResNet ImageNet weights were ever released, so the
# backbone starts from the checkpoint that `pretrain_config` writes (same
# architecture, ./_base_/backbones.py). The config builds without the file;
# training needs it (docs/pretraining.md), or override the path with
# --cfg-options model.backbone.init_cfg.checkpoint=...
_base_ = ['../maskrcnn_resnest50.py', './_base_/backbones.py']

pretrain_config = 'configs/sem/sem-resnet50_8xb32_in1k.py'
pretrained_checkpoint = 'work_dirs/sem-resnet50_8xb32_in1k/epoch_100.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        **_base_.sem_resnet50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained_checkpoint,
                      prefix='backbone.')))
