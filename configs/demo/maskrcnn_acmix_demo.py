# Demo of configs/acmix/mask-rcnn_acmix50_fpn_syncbn-backbone+head_ms-1x_coco.py: the SEM demo (the ResNeSt demo's data,
# sizes and schedule with a torchvision-layout ResNet from scratch) with
# ACmix-ResNet-26, its smallest depth.
_base_ = './maskrcnn_sem_demo.py'

model = dict(backbone=dict(type='mmsplitattn.ACmixResNet', depth=26))
