# Demo: configs/resnest/fcn_resnest101-d8_4xb2-80k_cityscapes-512x1024.py on the synthetic
# Cityscapes-layout data that tools/misc/make_demo_data.py writes
# (data/demo/cityscapes/). Changed, and only because a 2-core CPU must train it
# in minutes: data root, 128x256 images, ResNeSt-14-D8 from scratch with BN,
# a 300-iteration schedule.
_base_ = '../resnest/fcn_resnest101-d8_4xb2-80k_cityscapes-512x1024.py'

data_root = 'data/demo/cityscapes/'
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (128, 256)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=14, stem_channels=64, norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg, channels=128),
    auxiliary_head=dict(norm_cfg=norm_cfg, channels=64))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
