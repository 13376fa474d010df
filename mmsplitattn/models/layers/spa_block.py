"""Salient-Positions Attention block (SPANet, arXiv 2106.04996)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_int


@torch.fx.wrap
def salient_positions(theta: torch.Tensor, k: int, adaptive: bool = False,
                      reduction: int = 16) -> torch.Tensor:
    """Indices (B, k') of the k' most salient of the HW positions of theta
    (B, HW, C'), saliency being ``sum_c theta^2`` (in float32: a half square
    overflows at |theta| > 256, and CPU autocast keeps ``pow`` in half).
    ``k' = min(k, HW)``, or with ``adaptive`` ``max(1, HW // reduction)``.
    A leaf for ``torch.fx`` (k' depends on HW); ``torch.jit.trace`` and the
    ONNX exporter record k' as a constant.
    """
    hw = theta.size(1)
    num = max(1, hw // reduction) if adaptive else min(k, hw)
    return theta.float().pow(2).sum(2).topk(num, dim=1).indices


@torch.fx.wrap
def channel_affinity(tk: torch.Tensor) -> torch.Tensor:
    """``softmax(tk^T tk)`` (B, C', C') of the salient features tk (B, k, C'),
    in float32 whatever tk's dtype and any autocast: the logits of the salient
    positions overflow half precision (k * |theta|^2 > 65504 at |theta| ~ 90),
    and the tensor is small. A leaf for ``torch.fx`` (autocast is a context).
    """
    with torch.autocast(tk.device.type, enabled=False):
        tk = tk.float()
        return torch.softmax(tk.transpose(1, 2) @ tk, dim=-1)


@MODELS.register_module()
class SPABlock(BaseModule):
    """Residual attention over the channel affinity of the k most salient positions.

    ``theta`` and ``g`` are 1x1 convolutions to C' channels; the saliency of a
    position is ``sum_c theta^2``; the k most salient positions give
    ``A = softmax(tk^T tk)`` (C' x C'), and the block returns
    ``x + W(A @ g)`` with ``W`` = 1x1 conv + norm. The saliency and ``A``
    are computed in float32 and ``A`` is applied in g's dtype, so under
    fp16/bf16 autocast the output has the input's dtype and the affinity
    cannot overflow. Parameter names are the official ones (``g``,
    ``theta``, ``W.0``, ``W.1``); the official ``phi`` is never used, so it
    is not created, and state dicts that carry it still load (it is ignored).

    Unlike the official code it takes k > H*W (k is clipped), odd sizes with
    ``sub_sample`` (the output is resized to the input's size exactly) and
    runs on any device.

    Args:
        in_channels (int): C.
        inter_channels (int, optional): C', default ``max(1, C // 2)``.
        k (int): Salient positions. Default 8.
        adaptive (bool): Use ``k = max(1, HW // reduction)`` instead.
        sub_sample (bool): Max-pool ``g`` 2x2 and upsample ``W``'s output.
        reduction (int): For ``adaptive``. Default 16.
        norm_cfg (dict): Norm of ``W``. Default BN.
        return_attention (bool): Keep ``last_indices`` (B, k) into the
            flattened (H, W) map, ``last_size`` (H, W) and ``last_affinity``
            (B, C', C'), detached, for inspection.
        init_cfg (dict, optional): MMEngine initialisation config.

    Shapes: x (B, C, H, W) -> (B, C, H, W).
    """

    _abbr_ = 'spa_block'  # module name when used as a ResNet plugin

    def __init__(self, in_channels: int, inter_channels: Optional[int] = None, k: int = 8,
                 adaptive: bool = False, sub_sample: bool = False, reduction: int = 16,
                 norm_cfg: dict = dict(type='BN'), return_attention: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        check_int('in_channels', in_channels)
        if inter_channels is None:
            inter_channels = max(1, in_channels // 2)
        check_int('inter_channels', inter_channels)
        check_int('k', k)
        check_int('reduction', reduction)
        self.in_channels, self.inter_channels = in_channels, inter_channels
        self.k, self.adaptive, self.reduction = k, adaptive, reduction
        self.sub_sample = sub_sample
        self.return_attention = return_attention
        self.last_indices = self.last_affinity = self.last_size = None
        self.g = nn.Conv2d(in_channels, inter_channels, 1)
        self.theta = nn.Conv2d(in_channels, inter_channels, 1)
        self.W = nn.Sequential(nn.Conv2d(inter_channels, in_channels, 1),
                               build_norm_layer(norm_cfg, in_channels)[1])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Official checkpoints: an unused ``phi``, and ``g.0`` when sub-sampling.
        for key in [k for k in state_dict if k.startswith(prefix + 'phi.')]:
            del state_dict[key]
        for name in ('weight', 'bias'):
            old = f'{prefix}g.0.{name}'
            if old in state_dict:
                state_dict[f'{prefix}g.{name}'] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).flatten(2).transpose(1, 2)          # (B, HW, C')
        idx = salient_positions(theta, self.k, self.adaptive, self.reduction)  # (B, k)
        tk = theta.gather(1, idx.unsqueeze(2).expand(-1, -1, self.inter_channels))
        affinity = channel_affinity(tk)                           # (B, C', C'), float32
        g = self.g(x)
        if self.sub_sample:
            g = F.max_pool2d(g, 2, ceil_mode=True)
        y = (affinity.to(g.dtype) @ g.flatten(2)).view_as(g)      # (B, C', h', w')
        y = self.W(y)
        if self.sub_sample:
            y = F.interpolate(y, size=x.shape[-2:], mode='bilinear', align_corners=True)
        if self.return_attention:
            self.last_indices, self.last_affinity = idx.detach(), affinity.detach()
            self.last_size = tuple(x.shape[-2:])
        return x + y
