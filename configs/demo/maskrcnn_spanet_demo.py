# Demo of configs/maskrcnn_spanet50.py: the ResNeSt demo's data, sizes and
# schedule (see maskrcnn_resnest_demo.py) with the SPANetResNet backbone, at
# depth 14 (one bottleneck per stage) from scratch so it trains on a CPU.
_base_ = './maskrcnn_resnest_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.SPANetResNet',
        depth=14,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None))
