# Demo of configs/sem/sem-resnet50_8xb32_in1k.py on the synthetic
# ImageNet-layout set that tools/misc/make_demo_data.py writes
# (data/demo/imagenet/: one circle, square or triangle per 96x96 image), sized
# to pre-train on a 2-core CPU in minutes. Changed, and only because of that:
# data root and the three classes; SEM-ResNet-14, the backbone of
# maskrcnn_sem_demo.py (maskrcnn_sem_demo_in1k-pretrained.py loads what this
# writes); 96x96 images, crops of half the area and more; one process x 32
# images at lr 0.02 (warm-up over 50 iterations, then cosine), 8 epochs.
_base_ = '../sem/sem-resnet50_8xb32_in1k.py'

data_root = 'data/demo/imagenet/'
metainfo = dict(classes=('circle', 'square', 'triangle'))

model = dict(backbone=dict(depth=14), head=dict(num_classes=3, topk=(1, )))
data_preprocessor = dict(num_classes=3)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=96, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 8
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
