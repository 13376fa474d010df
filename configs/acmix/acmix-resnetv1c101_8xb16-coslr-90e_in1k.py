# ImageNet-1k pre-training of ACmix-ResNet-101-V1c (3x3 deep stem, ACmix
# 3x3s), the backbone of fcn_acmix101-d8_* and deeplabv3_acmix101-d8_*, which
# load the checkpoint this writes
# (work_dirs/acmix-resnetv1c101_8xb16-coslr-90e_in1k/epoch_90.pth): the
# official ACmix ResNet recipe of acmix-resnet50_8xb16-coslr-90e_in1k.py
# (batch 128, 90-epoch warm-up + cosine, label smoothing 0.1; the paper stops
# at ResNet-50) at depth 101 with the V1c stem.
_base_ = './acmix-resnet50_8xb16-coslr-90e_in1k.py'

model = dict(backbone=_base_.acmix_resnetv1c101)
