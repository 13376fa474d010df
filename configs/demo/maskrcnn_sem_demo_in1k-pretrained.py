# maskrcnn_sem_demo.py starting from the SEM-ResNet-14 that
# sem-resnet14_demo_in1k.py pre-trains on the demo classification set
# (`make demo-pretrain` runs both, then this config with
# model.backbone.init_cfg=None as the from-scratch baseline). The schedule is
# a third of the demo's (4 epochs, lr x0.1 at 3), so that pre-training, both
# detectors and their evaluation fit in ~20 minutes on a 2-core CPU.
_base_ = './maskrcnn_sem_demo.py'

pretrain_config = 'configs/demo/sem-resnet14_demo_in1k.py'
pretrained_checkpoint = 'work_dirs/demo_pretrain/sem-resnet14_demo_in1k/epoch_8.pth'

model = dict(
    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',
                                checkpoint=pretrained_checkpoint, prefix='backbone.')))

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3],
         gamma=0.1)
]
