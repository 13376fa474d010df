# Demo of configs/spanet/mask-rcnn_spanet50_fpn_syncbn-backbone+head_ms-1x_coco.py: the SEM demo (the ResNeSt demo's data,
# sizes and schedule with a depth-14 torchvision-layout ResNet from scratch)
# with SPA blocks after stages 1-2 instead of SEM.
_base_ = './maskrcnn_sem_demo.py'

model = dict(backbone=dict(type='mmsplitattn.SPANetResNet'))
