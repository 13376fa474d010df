# The SPANet-ResNet architectures pre-trained on ImageNet-1k by the
# spanet-*_in1k.py recipes and loaded by the detection/segmentation configs
# of this folder, defined once so a checkpoint always fits the model that
# loads it (see ../../sem/_base_/backbones.py). SPA blocks follow the last
# bottleneck of stages 1-2, the backbone's default placement.

# torchvision-layout ResNet-50 (7x7 stem): Mask R-CNN.
spanet_resnet50 = dict(type='mmsplitattn.SPANetResNet', depth=50)

# ResNet-101-V1c (3x3 deep stem 32-32-64): the Cityscapes FCN / DeepLabV3.
spanet_resnetv1c101 = dict(type='mmsplitattn.SPANetResNet', depth=101, deep_stem=True)
