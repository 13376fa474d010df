"""Split-Attention convolution (ResNeSt, Zhang et al. 2020, arXiv 2004.08955)."""
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_divisible, check_int
from .recompute import RecomputedBNReLU


def _pointwise(conv, x):
    """A 1x1 (grouped) convolution applied to vectors as a matmul.

    x (B, Cin) -> (B, Cout); cheaper than the convolution on a 1x1 map.
    """
    weight = conv.weight.flatten(1)                         # (Cout, Cin / g)
    if conv.groups == 1:
        return F.linear(x, weight, conv.bias)
    g = conv.groups
    out = torch.einsum('bgi,goi->bgo', x.view(x.size(0), g, -1),
                       weight.view(g, -1, weight.size(1))).flatten(1)
    return out if conv.bias is None else out + conv.bias


class RadixWeightedSum(torch.autograd.Function):
    """out = sum_r att[:, r] * x[:, r], x (B, R*C, H, W), att (B, R, C, 1, 1).

    Forward accumulates in place, so the (B, R, C, H, W) product is never
    built; backward writes the split gradients with one broadcast product
    (autograd's per-slice version would build and add R full-size buffers).
    """

    @staticmethod
    def forward(ctx, x, att):
        splits = x.unflatten(1, (att.size(1), att.size(2)))
        out = splits[:, 0] * att[:, 0]
        for r in range(1, att.size(1)):
            out.addcmul_(splits[:, r], att[:, r])
        ctx.save_for_backward(x, att)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, att = ctx.saved_tensors
        splits = x.unflatten(1, (att.size(1), att.size(2)))
        grad_x = grad_att = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad.unsqueeze(1) * att).flatten(1, 2)
        if ctx.needs_input_grad[1]:
            grad_att = torch.stack([(grad * splits[:, r]).sum((2, 3), keepdim=True)
                                    for r in range(att.size(1))], 1)
        return grad_x, grad_att


@MODELS.register_module()
class SplitAttentionConv2d(BaseModule):
    """Split-Attention convolution with cardinality ``groups`` and ``radix``.

    Parameter names follow mmdet/mmseg (``conv``, ``norm0``-style norm names
    from ``build_norm_layer`` e.g. ``bn0``, ``fc1``, ``bn1``, ``fc2``), so
    their ResNeSt checkpoints load unchanged.

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
        return_attention (bool): Keep the last attention weights, shaped
            (B, R, C), in ``self.last_attention`` for inspection.

    Shapes:
        x (B, Cin, H, W) -> (B, C, H', W') with H' the convolution's output.
    """

    def __init__(self,
                 in_channels,
                 channels,
                 kernel_size=3,
                 stride=1,
                 padding=None,
                 dilation=1,
                 groups=1,
                 radix=2,
                 reduction_factor=4,
                 conv_cfg=None,
                 norm_cfg=dict(type='BN'),
                 return_attention=False,
                 init_cfg=None):
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
        self.fc1 = build_conv_layer(
            None, channels, inter_channels, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(
            norm_cfg, inter_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = build_conv_layer(
            None, inter_channels, channels * radix, 1, groups=groups)

    @property
    def norm0(self):
        return getattr(self, self.norm0_name)

    @property
    def norm1(self):
        return getattr(self, self.norm1_name)

    def attention(self, x):
        """Attention weights from the split features.

        x (B, R*C, H, W) -> (B, R, C, 1, 1), summing to 1 over R (R > 1).
        """
        b = x.size(0)
        # mean over space, then sum over radix: same as GAP(sum_r split_r)
        # without materialising the (B, C, H, W) sum. sum / N rather than
        # mean: the backward of sum is a broadcast view, mean's a full tensor.
        gap = x.sum((2, 3)) / (x.size(2) * x.size(3))       # (B, R*C)
        if self.radix > 1:
            gap = gap.view(b, self.radix, self.channels).sum(1)
        z = self.norm1(_pointwise(self.fc1, gap)[..., None, None])
        logits = _pointwise(self.fc2, F.relu(z, inplace=True).flatten(1))
        if self.radix > 1:
            # fc2 is grouped by cardinality: channels are ordered (K, R, C/K).
            att = logits.view(b, self.groups, self.radix, -1).softmax(2)
            att = att.transpose(1, 2)                       # (B, R, K, C/K)
        else:
            att = torch.sigmoid(logits)
        return att.reshape(b, self.radix, self.channels, 1, 1)

    def forward(self, x):
        # the (B, R*C, H', W') activation is recomputed in backward, not kept
        with RecomputedBNReLU() as bn_relu:
            x = bn_relu(self.conv, self.norm0, x)           # (B, R*C, H', W')
            att = self.attention(x)                         # (B, R, C, 1, 1)
            if self.return_attention:
                self.last_attention = att.detach().flatten(2)
            if self.radix == 1:
                return x * att[:, 0]
            return RadixWeightedSum.apply(x, att)
