# ImageNet-1k pre-training of SEM-ResNet-50 (torchvision layout, a Switchable
# Excitation Module after bn3 of every bottleneck), the backbone of
# mask-rcnn_sem50_fpn_syncbn-backbone+head_ms-1x_coco.py, which loads the
# checkpoint this writes (work_dirs/sem-resnet50_8xb32_in1k/epoch_100.pth).
#
# The SEM paper trains on CIFAR only, so this is mmpretrain's ResNet-50
# recipe unchanged: 8 GPUs x 32 images, SGD lr 0.1 (momentum 0.9, weight
# decay 1e-4), 100 epochs with lr x0.1 at epochs 30/60/90, RandomResizedCrop
# 224 + flip, single-crop 224 evaluation (resize 256). It is the schedule of
# mmpretrain's ResNet-50 baseline (76.55 top-1), so the two compare directly;
# mmpretrain's SE-ResNet-50 uses a 140-epoch schedule instead.
# Run: tools/dist_train.sh configs/sem/sem-resnet50_8xb32_in1k.py 8
# (docs/pretraining.md).
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=_base_.sem_resnet50)
