# Demo of configs/maskrcnn_acmix50.py: the ResNeSt demo's data, sizes and
# schedule (see maskrcnn_resnest_demo.py) with ACmix-ResNet-26 from scratch
# so it trains on a CPU.
_base_ = './maskrcnn_resnest_demo.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmsplitattn.ACmixResNet',
        depth=26,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None))
