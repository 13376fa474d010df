# Mask R-CNN FPN with SPANet-ResNet-50 on COCO 2017: the torchvision-layout
# ResNet-50 setting of sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py (itself maskrcnn_resnest50.py's
# recipe: SyncBN backbone + head, multi-scale 1x, 8x2) with salient-positions
# attention blocks after the last bottleneck of stages 1-2 (the default
# placement) instead of SEM. No published reference.
#
# Pre-training: the backbone starts from the checkpoint that
# `pretrain_config` writes (same architecture, ./_base_/backbones.py;
# docs/pretraining.md).
_base_ = ['../sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py',
          './_base_/backbones.py']

pretrain_config = 'configs/spanet/spanet-resnet50_8xb32_in1k.py'
pretrained_checkpoint = 'work_dirs/spanet-resnet50_8xb32_in1k/epoch_100.pth'

model = dict(
    backbone=dict(**_base_.spanet_resnet50,
                  init_cfg=dict(checkpoint=pretrained_checkpoint)))
