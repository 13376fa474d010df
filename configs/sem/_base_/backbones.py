# The SEM-ResNet architectures pre-trained on ImageNet-1k by the
# sem-*_in1k.py recipes and loaded by the detection/segmentation configs of
# this folder, defined once so a checkpoint always fits the model that loads
# it. Only what decides the weights is here; how a config uses the backbone
# (out_indices, SyncBN or BN, strides/dilations, frozen stages, norm_eval)
# is that config's own. A config that lists this file in _base_ reads the
# dicts as _base_.<name>.

# torchvision-layout ResNet-50 (7x7 stem): Mask R-CNN.
sem_resnet50 = dict(type='mmsplitattn.SEMResNet', depth=50)

# ResNet-101-V1c (3x3 deep stem 32-32-64): the Cityscapes FCN / DeepLabV3.
sem_resnetv1c101 = dict(type='mmsplitattn.SEMResNet', depth=101, deep_stem=True)
