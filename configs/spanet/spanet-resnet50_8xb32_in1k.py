# ImageNet-1k pre-training of SPANet-ResNet-50 (torchvision layout, a
# salient-positions attention block after the last bottleneck of stages 1-2),
# the backbone of mask-rcnn_spanet50_fpn_syncbn-backbone+head_ms-1x_coco.py,
# which loads the checkpoint this writes
# (work_dirs/spanet-resnet50_8xb32_in1k/epoch_100.pth).
#
# SPANet's code has no ImageNet recipe (CIFAR / Tiny-ImageNet only), so this
# is mmpretrain's ResNet-50 recipe unchanged: 8 GPUs x 32, SGD lr 0.1
# (momentum 0.9, weight decay 1e-4), 100 epochs, lr x0.1 at 30/60/90,
# RandomResizedCrop 224 + flip; plain ResNet-50 reaches 76.55 top-1 with it.
_base_ = ['mmpretrain::resnet/resnet50_8xb32_in1k.py',
          './_base_/backbones.py',
          '../_base_/mmsplitattn_runtime.py']

model = dict(backbone=_base_.spanet_resnet50)
