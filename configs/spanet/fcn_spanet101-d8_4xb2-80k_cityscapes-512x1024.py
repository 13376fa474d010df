# fcn on Cityscapes (512x1024, 80k, 4x2, mIoU) with a ResNet-101-V1c-D8
# whose blocks carry salient-positions attention blocks in stages 1-2:
# mmseg's ResNet-101-D8 recipe with our backbone; its ImageNet weights
# (open-mmlab://resnet101_v1c) initialise all but the attention modules.
_base_ = 'mmseg::fcn/fcn_r101-d8_4xb2-80k_cityscapes-512x1024.py'

custom_imports = dict(imports=['mmsplitattn'], allow_failed_imports=False)

model = dict(backbone=dict(type='mmsplitattn.SPANetResNet', deep_stem=True))
