# Mask R-CNN FPN with ACmix-ResNet-50 on COCO 2017: the torchvision-layout
# ResNet-50 setting of sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py (itself maskrcnn_resnest50.py's
# recipe: SyncBN backbone + head, multi-scale 1x, 8x2) with the official
# ACmix ResNet-50 (7x7 stem, ACmix 3x3s). ACmix ImageNet weights for ResNets
# were never released: torchvision's ResNet-50 initialises the stem, 1x1
# convs, norms and shortcuts; set init_cfg to an ACmix checkpoint if you
# have one.
_base_ = '../sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py'

model = dict(backbone=dict(type='mmsplitattn.ACmixResNet'))
