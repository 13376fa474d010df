"""ACmix-ResNet: a torchvision-layout ResNet whose bottleneck 3x3 is ACmix."""
from typing import Optional

from mmsplitattn.registry import MODELS
from ..layers import ACmix
from .resnet_base import Bottleneck, ResNetBase


class ACmixBottleneck(Bottleneck):
    """Bottleneck with ``conv2`` = :class:`ACmix` (stride and dilation in it),
    as the official ``ResNet_ImageNet.py``: conv1, bn1, conv2 (ACmix), bn2,
    conv3, bn3, downsample.{0,1}.

    Shapes: x (B, inplanes, H, W) -> (B, 4 * planes, ceil(H / s), ceil(W / s)).
    """

    def __init__(self, inplanes: int, planes: int, attention_cfg: Optional[dict] = None,
                 **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        if self.with_dcn:
            raise ValueError('ACmixBottleneck has no deformable 3x3 to replace: dcn must '
                             f'be None for ACmixResNet, got {self.dcn!r}')
        self.conv2 = ACmix(planes, planes, stride=self.conv2_stride, dilation=self.dilation,
                           **(attention_cfg or {}))


@MODELS.register_module()
class ACmixResNet(ResNetBase):
    """ResNet-26/38/50/101 with ACmix bottlenecks (Pan et al., CVPR 2022).

    Parameter names match the official ``ResNet_ImageNet.py`` (7x7 stem
    ``conv1``/``bn1``), so its state dicts load (classifier dropped);
    ``deep_stem`` / ``avg_down`` give the V1c / D variants and
    ``strides``/``dilations``/``contract_dilation`` the D8 layout for
    segmentation. All options of mmdet's/mmseg's ResNet apply, but ``dcn``.

    Args:
        depth (int): 26 (1,2,4,1), 38 (2,3,5,2), 50 (3,4,6,3) or 101 (3,4,23,3).
        attention_cfg (dict, optional): Arguments of :class:`mmsplitattn.ACmix`
            but the channels, stride and dilation: ``kernel_att`` (7),
            ``head`` (4), ``kernel_conv`` (3).
        **kwargs: Those of mmdet's/mmseg's ResNet.

    Shapes: x (B, 3, H, W) -> stage i (B, 256 * 2**i, H / 2**(i+2), W / 2**(i+2)).
    """

    arch_settings = {
        26: (ACmixBottleneck, (1, 2, 4, 1)),
        38: (ACmixBottleneck, (2, 3, 5, 2)),
        50: (ACmixBottleneck, (3, 4, 6, 3)),
        101: (ACmixBottleneck, (3, 4, 23, 3)),
    }

    def __init__(self, depth: int, attention_cfg: Optional[dict] = None, **kwargs):
        attention_cfg = dict(attention_cfg or {})
        for name in ('in_channels', 'out_channels', 'stride', 'dilation'):
            if name in attention_cfg:
                raise ValueError(f'attention_cfg must not set {name!r} (the backbone sets it '
                                 f'per block), got {attention_cfg!r}')
        super().__init__(depth, block_kwargs=dict(attention_cfg=attention_cfg), **kwargs)
