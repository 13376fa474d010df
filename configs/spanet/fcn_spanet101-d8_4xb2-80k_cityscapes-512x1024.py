# fcn on Cityscapes (512x1024, 80k, 4x2, mIoU) with a ResNet-101-V1c-D8
# whose blocks carry salient-positions attention blocks in stages 1-2:
# mmseg's ResNet-101-D8 recipe with our backbone.
#
# Pre-training: no SPANet-ResNet ImageNet weights were ever released; the
# backbone starts from the checkpoint that `pretrain_config` writes (same
# architecture, ./_base_/backbones.py; docs/pretraining.md) instead of
# mmseg's open-mmlab://resnet101_v1c. The config builds without the file.
_base_ = ['mmseg::fcn/fcn_r101-d8_4xb2-80k_cityscapes-512x1024.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

pretrain_config = 'configs/spanet/spanet-resnetv1c101_8xb32_in1k.py'
pretrained_checkpoint = 'work_dirs/spanet-resnetv1c101_8xb32_in1k/epoch_100.pth'

model = dict(
    pretrained=None,
    backbone=dict(**_base_.spanet_resnetv1c101,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained_checkpoint,
                                prefix='backbone.')))
