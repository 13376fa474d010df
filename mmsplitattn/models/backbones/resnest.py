"""ResNeSt backbone (Zhang et al. 2020): ResNet-D with Split-Attention blocks."""
import math

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer

from mmsplitattn.registry import MODELS
from ..checks import check_int
from ..layers import SplitAttentionConv2d
from .resnet_base import Bottleneck, ResNetBase


class ResNeStBottleneck(Bottleneck):
    """Bottleneck whose 3x3 convolution is a :class:`SplitAttentionConv2d`.

    conv1 1x1 -> norm1 -> ReLU -> [avd] -> split-attention 3x3 -> [avd]
    -> conv3 1x1 -> norm3 -> + shortcut -> ReLU. The stride is taken by the
    avd ``AvgPool2d(3, stride, padding=1)`` (after the 3x3, or before it with
    ``avd_first``) when ``avg_down_stride``, else by the 3x3 itself.
    Parameter names are mmdet's/mmseg's (``conv2.conv``, ``avd_layer``, ...).

    Shapes: x (B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride).
    """

    expansion = 4

    def __init__(self,
                 inplanes,
                 planes,
                 groups=1,
                 base_width=4,
                 base_channels=64,
                 radix=2,
                 reduction_factor=4,
                 avg_down_stride=True,
                 avd_first=False,
                 **kwargs):
        super().__init__(inplanes, planes, **kwargs)
        if groups == 1:
            width = planes
        else:
            width = math.floor(planes * base_width / base_channels) * groups
        self.width = width
        self.avg_down_stride = avg_down_stride and self.conv2_stride > 1
        self.avd_first = avd_first

        # Rebuild the parts whose width differs from the plain bottleneck.
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, width, postfix=1)
        self.conv1 = build_conv_layer(
            self.conv_cfg, inplanes, width, 1, stride=self.conv1_stride,
            bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = SplitAttentionConv2d(
            width, width, kernel_size=3,
            stride=1 if self.avg_down_stride else self.conv2_stride,
            padding=self.dilation, dilation=self.dilation, groups=groups,
            radix=radix, reduction_factor=reduction_factor,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, dcn=self.dcn)
        delattr(self, self.norm2_name)
        if self.avg_down_stride:
            self.avd_layer = nn.AvgPool2d(3, self.conv2_stride, padding=1)
        self.conv3 = build_conv_layer(
            self.conv_cfg, width, planes * self.expansion, 1, bias=False)
        if self.with_plugins and width != planes:
            for name in self.after_conv1_plugin_names + self.after_conv2_plugin_names:
                delattr(self, name)
            self.after_conv1_plugin_names = self.make_block_plugins(
                width, self.after_conv1_plugins)
            self.after_conv2_plugin_names = self.make_block_plugins(
                width, self.after_conv2_plugins)

    def forward_conv2(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width, H, W) -> (B, width, H', W'): [avd] -> split attention -> [avd]."""
        if self.avg_down_stride and self.avd_first:
            x = self.avd_layer(x)
        x = self.conv2(x)
        if self.avg_down_stride and not self.avd_first:
            x = self.avd_layer(x)
        return x


@MODELS.register_module()
class ResNeSt(ResNetBase):
    """ResNeSt backbone: deep stem, avg-down shortcuts, Split-Attention blocks.

    Takes every argument of mmdet's/mmseg's ``ResNeSt`` (``groups``,
    ``base_width``, ``radix``, ``reduction_factor``, ``avg_down_stride``) and of
    their ``ResNet`` (``stem_channels``, ``strides``, ``dilations``,
    ``contract_dilation``, ``multi_grid``, ``out_indices``, ``frozen_stages``,
    ``norm_eval``, ``with_cp``, ``plugins``, ``init_cfg``, ...), and loads
    their checkpoints (``open-mmlab://resnest50`` etc.) unchanged.

    Args:
        depth (int): 14, 26, 50, 101, 152, 200 or 269.
        groups (int): Cardinality K. Default 1.
        base_width (int): Width per group when ``groups > 1``. Default 4.
        radix (int): Radix R >= 1. Default 2.
        reduction_factor (int): Attention bottleneck reduction. Default 4.
        avg_down_stride (bool): Stride with the avd pool instead of the
            3x3 convolution. Default True.
        avd_first (bool): Put the avd pool before the 3x3. Default False.
        stem_channels (int): Deep-stem width: 64 for S-14/26/50, 128 for
            S-101/200/269 as released.

    Shapes: x (B, 3, H, W) -> stage i (B, 256 * 2**i, H / 2**(i+2), W / 2**(i+2))
    for the default strides.
    """

    arch_settings = {
        14: (ResNeStBottleneck, (1, 1, 1, 1)),
        26: (ResNeStBottleneck, (2, 2, 2, 2)),
        50: (ResNeStBottleneck, (3, 4, 6, 3)),
        101: (ResNeStBottleneck, (3, 4, 23, 3)),
        152: (ResNeStBottleneck, (3, 8, 36, 3)),
        200: (ResNeStBottleneck, (3, 24, 36, 3)),
        269: (ResNeStBottleneck, (3, 30, 48, 8)),
    }
    styles = ('pytorch', )

    def __init__(self,
                 depth,
                 groups=1,
                 base_width=4,
                 radix=2,
                 reduction_factor=4,
                 avg_down_stride=True,
                 avd_first=False,
                 deep_stem=True,
                 avg_down=True,
                 **kwargs):
        check_int('groups', groups)
        check_int('base_width', base_width)
        check_int('radix', radix)
        check_int('reduction_factor', reduction_factor)
        base_channels = kwargs.get('base_channels', 64)
        super().__init__(
            depth,
            block_kwargs=dict(
                groups=groups,
                base_width=base_width,
                base_channels=base_channels,
                radix=radix,
                reduction_factor=reduction_factor,
                avg_down_stride=avg_down_stride,
                avd_first=avd_first),
            deep_stem=deep_stem,
            avg_down=avg_down,
            **kwargs)

