# ImageNet-1k pre-training of ACmix-ResNet-50-V1c (3x3 deep stem, ACmix 3x3s),
# the backbone of fcn_acmix50-d8_* and deeplabv3_acmix50-d8_*, which load the
# checkpoint this writes
# (work_dirs/acmix-resnetv1c50_8xb16-coslr-90e_in1k/epoch_90.pth): the
# official ACmix ResNet recipe of acmix-resnet50_8xb16-coslr-90e_in1k.py
# (batch 128, 90-epoch warm-up + cosine, label smoothing 0.1) with the V1c
# stem the segmentation configs use.
_base_ = './acmix-resnet50_8xb16-coslr-90e_in1k.py'

model = dict(backbone=_base_.acmix_resnetv1c50)
