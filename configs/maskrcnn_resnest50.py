# Mask R-CNN FPN with ResNeSt-50 on COCO 2017 (data/coco/): mmdet's ResNeSt
# recipe (SyncBN backbone + head, Shared4Conv1FC box head, multi-scale 1x,
# 8 GPUs x 2 images, CocoMetric bbox + segm), with our backbone.
# Reference (mmdet): box AP 42.6, mask AP 38.1.
_base_ = ['mmdet::resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py',
          './_base_/mmsplitattn_runtime.py']

model = dict(backbone=dict(type='mmsplitattn.ResNeSt'))
