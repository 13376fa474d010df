# Mask R-CNN FPN with SPANet-ResNet-50 on COCO 2017: the recipe of
# maskrcnn_resnest50.py (SyncBN backbone + head, multi-scale 1x, 8x2) with a
# torchvision-layout ResNet-50 with salient-positions attention
# blocks after the last bottleneck of stages 1-2 (the default placement).
# ImageNet ResNet-50 weights initialise all else. No published reference.
_base_ = './maskrcnn_resnest50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.SPANetResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
