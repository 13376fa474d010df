# Mask R-CNN FPN with SPANet-ResNet-50 on COCO 2017: the torchvision-layout
# ResNet-50 setting of sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py (itself maskrcnn_resnest50.py's
# recipe: SyncBN backbone + head, multi-scale 1x, 8x2) with salient-positions
# attention blocks after the last bottleneck of stages 1-2 (the default
# placement) instead of SEM. ImageNet ResNet-50 weights initialise all but
# the SPA blocks. No published reference.
_base_ = '../sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py'

model = dict(backbone=dict(type='mmsplitattn.SPANetResNet'))
