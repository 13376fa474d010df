# Mask R-CNN FPN with ResNeSt-101 on COCO 2017, mmdet's recipe.
# Reference (mmdet): box AP 45.2, mask AP 40.2.
_base_ = ['mmdet::resnest/mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=dict(type='mmsplitattn.ResNeSt'))
