# ImageNet-1k pre-training of ACmix-ResNet-50 (the official ResNet_ImageNet.py
# network: 7x7 stem, every bottleneck 3x3 an ACmix module), the backbone of
# mask-rcnn_acmix50_fpn_syncbn-backbone+head_ms-1x_coco.py, which loads the
# checkpoint this writes (work_dirs/acmix-resnet50_8xb16-coslr-90e_in1k/epoch_90.pth).
#
# The official ResNet training (LeapLabTHU/ACmix, ResNet/README.md and
# ResNet/main.py; 77.8 top-1 reported for ResNet-50, 18.6M parameters):
# a total batch of 128 (the README's command), SGD lr 0.1, momentum 0.9,
# weight decay 1e-4 on every parameter, 90 epochs: 5 warm-up epochs rising
# linearly per iteration from lr/4 to lr, then cosine to 0 per iteration;
# label smoothing 0.1; RandomResizedCrop 224 + horizontal flip, evaluation
# at resize 256 + centre crop 224 (torchvision, hence PIL resizing here).
# Where we chose: 8 GPUs x 16 images for the batch of 128 (the official
# script runs one node with DataParallel and does not name the GPU count);
# mmpretrain's label smoothing puts 0.1/1000 on every class, the official
# 0.1/999 on the wrong ones only (targets 0.9001 vs 0.9).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(
    backbone=_base_.acmix_resnet50,
    head=dict(loss=dict(
        _delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 90
warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=0.25, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=0,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# lr 0.1 is for the total batch of 128; --auto-scale-lr rescales it for others
auto_scale_lr = dict(base_batch_size=128)
