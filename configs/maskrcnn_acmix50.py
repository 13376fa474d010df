# Mask R-CNN FPN with ACmix-ResNet-50 on COCO 2017: the recipe of
# maskrcnn_resnest50.py (SyncBN backbone + head, multi-scale 1x, 8x2) with
# the official torchvision-layout ACmix ResNet-50 (7x7 stem, ACmix 3x3s).
# ACmix ImageNet weights for ResNets were never released: torchvision's
# ResNet-50 initialises the stem, 1x1 convs, norms and shortcuts; set
# init_cfg to a converted ACmix checkpoint if you have one.
_base_ = './maskrcnn_resnest50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.ACmixResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
