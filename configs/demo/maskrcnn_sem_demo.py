# Demo of configs/sem/mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py: the ResNeSt demo's data, sizes and
# schedule (see maskrcnn_resnest_demo.py) with the SEMResNet backbone, at
# depth 14 (one bottleneck per stage) from scratch so it trains on a CPU.
_base_ = './maskrcnn_resnest_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.SEMResNet',
        depth=14,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None))
