# fcn on Cityscapes (512x1024, 80k, 4x2, mIoU) with ACmix-ResNet-50-V1c-D8:
# mmseg's ResNet-50-D8 recipe with ACmix bottlenecks, whose attention
# window and convolution path are dilated in stages 3-4.
#
# Pre-training: no ACmix-ResNet ImageNet weights were ever released; the
# backbone starts from the checkpoint that `pretrain_config` writes (same
# architecture, ./_base_/backbones.py; docs/pretraining.md) instead of
# mmseg's open-mmlab://resnet50_v1c. The config builds without the file.
_base_ = ['mmseg::fcn/fcn_r50-d8_4xb2-80k_cityscapes-512x1024.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

pretrain_config = 'configs/acmix/acmix-resnetv1c50_8xb16-coslr-90e_in1k.py'
pretrained_checkpoint = 'work_dirs/acmix-resnetv1c50_8xb16-coslr-90e_in1k/epoch_90.pth'

model = dict(
    pretrained=None,
    backbone=dict(**_base_.acmix_resnetv1c50,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained_checkpoint,
                                prefix='backbone.')))
