# Mask R-CNN FPN with SEM-ResNet-50 on COCO 2017: the recipe of
# maskrcnn_resnest50.py (SyncBN backbone + head, multi-scale 1x, 8x2) with a
# torchvision-layout ResNet-50 whose bottlenecks end in a Switchable
# Excitation Module. ImageNet ResNet-50 weights initialise everything but the
# SEM modules. No published reference: SEM was only evaluated on CIFAR.
_base_ = '../maskrcnn_resnest50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.SEMResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
