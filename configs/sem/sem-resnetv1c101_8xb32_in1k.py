# ImageNet-1k pre-training of SEM-ResNet-101-V1c (3x3 deep stem, SEM after
# bn3 of every bottleneck), the backbone of the Cityscapes configs
# fcn_sem101-d8_* and deeplabv3_sem101-d8_*, which load the checkpoint this
# writes (work_dirs/sem-resnetv1c101_8xb32_in1k/epoch_100.pth) and dilate
# stages 3-4 themselves (dilation adds no weights).
#
# mmpretrain's ResNet-V1c-101 recipe unchanged (the SEM paper has no
# ImageNet recipe): 8 GPUs x 32, SGD lr 0.1, 100 epochs, lr x0.1 at 30/60/90,
# PIL-resize RandomResizedCrop 224 + flip; ResNet-V1c-101 reaches 78.30 top-1
# with it in mmpretrain.
_base_ = ['mmpretrain::resnet/resnetv1c101_8xb32_in1k.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=_base_.sem_resnetv1c101)
