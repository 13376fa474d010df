# The ACmix-ResNet architectures pre-trained on ImageNet-1k by the
# acmix-*_in1k.py recipes and loaded by the detection/segmentation configs
# of this folder, defined once so a checkpoint always fits the model that
# loads it (see ../../sem/_base_/backbones.py). ACmix replaces every
# bottleneck 3x3 (attention window 7, 4 heads, 3x3 convolution path).

# The official ACmix ResNet-50 (7x7 stem): Mask R-CNN.
acmix_resnet50 = dict(type='mmsplitattn.ACmixResNet', depth=50)

# ResNet-50/101-V1c (3x3 deep stem 32-32-64): the Cityscapes FCN / DeepLabV3.
acmix_resnetv1c50 = dict(type='mmsplitattn.ACmixResNet', depth=50, deep_stem=True)
acmix_resnetv1c101 = dict(type='mmsplitattn.ACmixResNet', depth=101, deep_stem=True)
