# ImageNet-1k pre-training of SPANet-ResNet-101-V1c (3x3 deep stem, SPA
# blocks after stages 1-2), the backbone of the Cityscapes configs
# fcn_spanet101-d8_* and deeplabv3_spanet101-d8_*, which load the checkpoint
# this writes (work_dirs/spanet-resnetv1c101_8xb32_in1k/epoch_100.pth).
#
# mmpretrain's ResNet-V1c-101 recipe unchanged (8 GPUs x 32, SGD lr 0.1,
# 100 epochs, lr x0.1 at 30/60/90, PIL-resize RandomResizedCrop 224 + flip;
# 78.30 top-1 for plain ResNet-V1c-101).
_base_ = ['mmpretrain::resnet/resnetv1c101_8xb32_in1k.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=_base_.spanet_resnetv1c101)
