# Mask R-CNN FPN with ACmix-ResNet-50 on COCO 2017: the torchvision-layout
# ResNet-50 setting of sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py (itself maskrcnn_resnest50.py's
# recipe: SyncBN backbone + head, multi-scale 1x, 8x2) with the official
# ACmix ResNet-50 (7x7 stem, ACmix 3x3s).
#
# Pre-training: ACmix ImageNet weights for ResNets were never released; the
# backbone starts from the checkpoint that `pretrain_config` writes (same
# architecture, ./_base_/backbones.py; docs/pretraining.md).
_base_ = ['../sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py',
          './_base_/backbones.py']

pretrain_config = 'configs/acmix/acmix-resnet50_8xb16-coslr-90e_in1k.py'
pretrained_checkpoint = 'work_dirs/acmix-resnet50_8xb16-coslr-90e_in1k/epoch_90.pth'

model = dict(
    backbone=dict(**_base_.acmix_resnet50,
                  init_cfg=dict(checkpoint=pretrained_checkpoint)))
