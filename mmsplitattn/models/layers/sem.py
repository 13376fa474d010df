"""Switchable Excitation Module (Zhong, Wen, Qin, arXiv 2209.05680)."""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_int


def eca_kernel_size(channels, gamma=2, b=1):
    """ECA's adaptive kernel: t = int(|(log2 C + b) / gamma|), made odd."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@MODELS.register_module()
class SEM(BaseModule):
    """Switchable Excitation: a learned soft switch over SE, ECA and IE.

    ``m = GAP(x)``; decisions ``w = sigmoid(switch_fc(m))`` (B, 3); logits
    ``e1 = fc2(ReLU(fc1(m)))`` (SE), ``e2 = conv(m)`` (ECA, 1-D over
    channels), ``e3 = m * w1 + b1`` (IE); each logit is scaled by its
    decision *before* its sigmoid and the three sigmoids are multiplied:
    ``att = sigmoid(w0 e1) * sigmoid(w1 e2) * sigmoid(w2 e3)``.
    Parameter names are the official ones, so its state dicts load. The
    attention has the dtype autocast gives m, so the output has x's dtype.

    Args:
        in_channels (int): Channels C of the input.
        reduction (int): SE hidden width ``max(1, round(C / reduction))``.
        kernel_size (int, optional): ECA kernel; default from C as ECA.
        return_attention (bool): Keep ``last_decision`` (B, 3) and
            ``last_attention`` (B, C), detached, for inspection.
        init_cfg (dict, optional): MMEngine initialisation config.

    Shapes: x (B, C, H, W) -> x * att, (B, C, H, W).
    """

    _abbr_ = 'sem'  # module name when used as a ResNet plugin

    def __init__(self, in_channels: int, reduction: int = 16,
                 kernel_size: Optional[int] = None, return_attention: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        check_int('in_channels', in_channels)
        check_int('reduction', reduction)
        if kernel_size is None:
            kernel_size = eca_kernel_size(in_channels)
        check_int('kernel_size', kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        hidden = max(1, round(in_channels / reduction))
        self.in_channels = in_channels
        self.return_attention = return_attention
        self.last_decision = self.last_attention = None
        self.switch_fc = nn.Linear(in_channels, 3)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, in_channels)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.w1 = nn.Parameter(torch.zeros(1, in_channels, 1, 1))
        self.b1 = nn.Parameter(torch.full((1, in_channels, 1, 1), -1.0))

    def attention(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (decisions (B, 3), attention (B, C))."""
        # adaptive_avg_pool2d accumulates half inputs in float32
        m = F.adaptive_avg_pool2d(x, 1).flatten(1)          # (B, C)
        w = torch.sigmoid(self.switch_fc(m))                # (B, 3)
        e_se = self.fc2(F.relu(self.fc1(m)))                # (B, C)
        e_eca = self.conv(m.unsqueeze(1)).squeeze(1)        # (B, C)
        # IE's float32 parameters in m's dtype: under autocast they would otherwise
        # promote the attention, and with it the block's output, to float32
        e_ie = m * self.w1.view(1, -1).to(m.dtype) + self.b1.view(1, -1).to(m.dtype)
        att = (torch.sigmoid(w[:, 0:1] * e_se) * torch.sigmoid(w[:, 1:2] * e_eca)
               * torch.sigmoid(w[:, 2:3] * e_ie))
        return w, att

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, att = self.attention(x)
        if self.return_attention:
            self.last_decision, self.last_attention = w.detach(), att.detach()
        return x * att[:, :, None, None]
