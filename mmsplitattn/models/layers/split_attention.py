"""Split-Attention convolution (ResNeSt, Zhang et al. 2020, arXiv 2004.08955)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_divisible, check_int


def unflatten_channels(x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """``x.unflatten(1, sizes)`` as a reshape with the batch and spatial sizes
    read from ``x``: ONNX has no Unflatten before opset 13 (mmdeploy exports
    at 11), and sizes read from the tensor stay dynamic in traced graphs.

    Shapes: (B, prod(sizes), H, W) -> (B, *sizes, H, W); one size may be -1.
    """
    return x.reshape(x.shape[0], *sizes, x.shape[2], x.shape[3])


class RSoftmax(nn.Module):
    """Softmax over the radix within each cardinal group ("r-softmax"), or a
    sigmoid gate when ``radix == 1``.

    ``fc2`` is grouped by cardinality K, so its channels are ordered
    (K, R, C/K); the weights come out ordered (R, K, C/K) = (R, C), the order
    of the radix splits.

    Shapes: logits (B, R*C, 1, 1) -> weights (B, R*C, 1, 1).
    """

    def __init__(self, radix: int, groups: int):
        super().__init__()
        self.radix = radix
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radix == 1:
            return torch.sigmoid(x)
        x = unflatten_channels(x, (self.groups, self.radix, -1)).softmax(2)  # (B, K, R, C/K, 1, 1)
        return x.transpose(1, 2).flatten(1, 3)                            # (B, R*C, 1, 1)


@MODELS.register_module()
class SplitAttentionConv2d(BaseModule):
    """Split-Attention convolution with cardinality ``groups`` and ``radix``.

    ``U = ReLU(norm0(conv(x)))`` split in R radix groups; the attention
    ``a = rSoftmax(fc2(ReLU(norm1(fc1(GAP(sum_r U_r))))))``; the output
    ``sum_r a_r * U_r``. Parameter names are mmdet's/mmseg's (``conv``,
    ``norm0``/``norm1`` named by ``build_norm_layer`` e.g. ``bn0``/``bn1``,
    ``fc1``, ``fc2``), so their ResNeSt checkpoints load unchanged.

    Args:
        in_channels (int): Input channels ``Cin``.
        channels (int): Output channels ``C`` (the block width).
        kernel_size, stride, padding, dilation: of the grouped convolution.
        groups (int): Cardinality ``K``. Default 1.
        radix (int): Splits per cardinal group ``R``; ``R = 1`` uses a
            sigmoid gate instead of the r-softmax. Default 2.
        reduction_factor (int): ``inter = max(Cin * R // reduction_factor, 32)``.
        conv_cfg (dict, optional): Config of the grouped convolution.
        norm_cfg (dict): Config of both norms. Default ``dict(type='BN')``.
        dcn (dict, optional): Deformable convolution config (as mmdet's
            ``dcn``); it replaces ``conv_cfg`` for the grouped convolution
            unless ``fallback_on_stride`` is set and the stride is > 1.
        return_attention (bool): Keep the last attention weights, shaped
            (B, R, C), detached, in ``self.last_attention`` for inspection.
        init_cfg (dict, optional): MMEngine initialisation config.

    Shapes:
        x (B, Cin, H, W) -> (B, C, H', W') with H' the convolution's output.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 padding: Optional[int] = None,
                 dilation: int = 1,
                 groups: int = 1,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 return_attention: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('channels', channels),
                            ('kernel_size', kernel_size), ('stride', stride),
                            ('dilation', dilation), ('groups', groups),
                            ('radix', radix),
                            ('reduction_factor', reduction_factor)):
            check_int(name, value)
        # the convolution is grouped by groups * radix on its input side
        check_divisible('in_channels', in_channels, 'groups * radix', groups * radix)
        check_divisible('channels', channels, 'groups', groups)
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        if dcn is not None:
            dcn = dict(dcn)
            fallback_on_stride = dcn.pop('fallback_on_stride', False)
            if not (fallback_on_stride and stride > 1):
                if conv_cfg is not None:
                    raise ValueError('conv_cfg must be None when dcn is given (the dcn '
                                     f'config builds the convolution), got {conv_cfg!r}')
                conv_cfg = dcn
        inter_channels = max(in_channels * radix // reduction_factor, 32)
        inter_channels = -(-inter_channels // groups) * groups
        self.radix = radix
        self.groups = groups
        self.channels = channels
        self.return_attention = return_attention
        self.last_attention = None

        self.conv = build_conv_layer(
            conv_cfg, in_channels, channels * radix, kernel_size,
            stride=stride, padding=padding, dilation=dilation,
            groups=groups * radix, bias=False)
        self.norm0_name, norm0 = build_norm_layer(
            norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = build_conv_layer(
            None, channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(
            norm_cfg, inter_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = build_conv_layer(
            None, inter_channels, channels * radix, 1, groups=groups)
        self.rsoftmax = RSoftmax(radix, groups)

    @property
    def norm0(self) -> nn.Module:
        return getattr(self, self.norm0_name)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _norm1(self, z: torch.Tensor) -> torch.Tensor:
        """``norm1`` on the (B, inter, 1, 1) attention vector, whose batch
        statistics need at least 2 images."""
        try:
            return self.norm1(z)
        except ValueError as e:
            raise ValueError(
                f'{type(self.norm1).__name__} {self.norm1_name!r} of SplitAttentionConv2d '
                f'normalises one value per channel and image, so training it needs '
                f'more than one image per GPU (got input {tuple(z.shape)}). Train with '
                '2+ images per GPU, SyncBN (norm_cfg=dict(type="SyncBN")), GroupNorm, '
                'or norm_eval=True.') from e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm0(self.conv(x)))           # (B, R*C, H', W')
        radix_channels = (self.radix, self.channels)
        splits = unflatten_channels(x, radix_channels)    # (B, R, C, H', W')
        # GAP(sum_r U_r) = sum_r GAP(U_r); adaptive_avg_pool2d accumulates
        # half inputs in float32
        gap = F.adaptive_avg_pool2d(x, 1)                 # (B, R*C, 1, 1)
        gap = unflatten_channels(gap, radix_channels).sum(1)  # (B, C, 1, 1)
        z = self.relu(self._norm1(self.fc1(gap)))         # (B, inter, 1, 1)
        att = self.rsoftmax(self.fc2(z))                  # (B, R*C, 1, 1)
        att = unflatten_channels(att, radix_channels)     # (B, R, C, 1, 1)
        if self.return_attention:
            self.last_attention = att.detach().flatten(2)
        return (att * splits).sum(1)                      # (B, C, H', W')
