# fcn on Cityscapes (512x1024, 80k, 4x2, mIoU) with ACmix-ResNet-101-V1c-D8:
# mmseg's ResNet-101-D8 recipe with ACmix bottlenecks, whose attention
# window and convolution path are dilated in stages 3-4. No ACmix ImageNet
# weights exist: the inherited ResNet-101-V1c checkpoint initialises
# everything but the ACmix modules.
_base_ = 'mmseg::fcn/fcn_r101-d8_4xb2-80k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmsplitattn'], allow_failed_imports=False)

model = dict(backbone=dict(type='mmsplitattn.ACmixResNet', deep_stem=True))
