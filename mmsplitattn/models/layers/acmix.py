"""ACmix (Pan et al., CVPR 2022): a shared 1x1 projection feeding both a
local self-attention and a shift-kernel convolution, mixed by learnt rates."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_divisible, check_int


def position_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 2, h, w): linspace(-1, 1) along w, then along h, on ``like``'s device."""
    loc_w = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype)
    loc_h = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    return torch.stack([loc_w.expand(h, w), loc_h[:, None].expand(h, w)])[None]


def _reflect_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Indices into a length-``n`` axis that reflect-pad it by ``pad`` on
    both sides, (n + 2 * pad,): ``-1 -> 1``, ``n -> n - 2``, repeating when
    ``pad >= n``; all zeros when ``n == 1``. Written with tensor operations
    only, so traced and exported graphs stay valid for every size."""
    positions = torch.arange(n, device=device)
    last = positions[-1:]                          # n - 1, as a (1,) tensor
    period = (2 * last).clamp(min=1)
    i = (torch.arange(n + 2 * pad, device=device) - pad).remainder(period)
    return torch.where(i <= last, i, period - i)


def reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflection padding of the last two dims by ``pad``, for any size.

    Same as ``F.pad(x, [pad] * 4, mode='reflect')`` where that works
    (pad < size); beyond it the reflection repeats, so tiny maps pad too.
    """
    x = x.index_select(-2, _reflect_index(x.size(-2), pad, x.device))
    return x.index_select(-1, _reflect_index(x.size(-1), pad, x.device))


@MODELS.register_module()
class ACmix(BaseModule):
    """ACmix: ``rate1 * local_attention + rate2 * shift_convolution``.

    ``q, k, v`` = 1x1 convs of x. Attention: ``head`` heads of width
    ``d = out_channels // head`` attend over a ``kernel_att`` window (reflection
    padded, ``dilation``-spaced, centred on every ``stride``-th pixel) with
    logits ``q * d**-0.5 . (k_j + pe_q - pe_j)``, ``pe = conv_p(grid)``.
    Convolution: ``fc`` maps the 3 * head q/k/v features of each channel to
    ``kernel_conv**2`` maps, which ``dep_conv`` (grouped, shift-kernel
    initialised, no bias) convolves with ``stride`` and ``dilation``.
    Parameter names are the official ones, so official state dicts load.

    The window is never unfolded: the logits and the weighted sum are
    accumulated one window offset at a time over strided views, so memory
    stays O(C * H * W + K^2 * head * H' * W') instead of the unfold's
    O(K^2 * C * H * W). Any H, W (output ``ceil(H / stride)``), any odd
    kernels, real dilation, any device.

    Shapes: x (B, in_channels, H, W) -> (B, out_channels, ceil(H/s), ceil(W/s)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_att: int = 7,
                 head: int = 4, kernel_conv: int = 3, stride: int = 1, dilation: int = 1,
                 return_attention: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('kernel_att', kernel_att), ('head', head),
                            ('kernel_conv', kernel_conv), ('stride', stride),
                            ('dilation', dilation)):
            check_int(name, value)
        for name, value in (('kernel_att', kernel_att), ('kernel_conv', kernel_conv)):
            if value % 2 == 0:
                raise ValueError(f'{name} must be odd, got {value}')
        check_divisible('out_channels', out_channels, 'head', head)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_att, self.head, self.kernel_conv = kernel_att, head, kernel_conv
        self.stride, self.dilation = stride, dilation
        self.head_dim = out_channels // head
        self.return_attention = return_attention
        self.last_attention = None

        self.conv1 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv_p = nn.Conv2d(2, self.head_dim, 1)
        self.fc = nn.Conv2d(3 * head, kernel_conv * kernel_conv, 1, bias=False)
        self.dep_conv = nn.Conv2d(
            kernel_conv * kernel_conv * self.head_dim, out_channels, kernel_conv,
            stride=stride, padding=dilation * (kernel_conv - 1) // 2,
            dilation=dilation, groups=self.head_dim, bias=False)
        self.rate1 = nn.Parameter(torch.empty(1))
        self.rate2 = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self):
        """rate1 = rate2 = 0.5; dep_conv = shift kernels (output channel o,
        input i of its group: 1 at position (i // kc, i % kc))."""
        nn.init.constant_(self.rate1, 0.5)
        nn.init.constant_(self.rate2, 0.5)
        kc = self.kernel_conv
        kernel = torch.zeros(kc * kc, kc, kc)
        for i in range(kc * kc):
            kernel[i, i // kc, i % kc] = 1.0
        with torch.no_grad():
            self.dep_conv.weight.copy_(kernel.expand_as(self.dep_conv.weight))

    def init_weights(self):
        """Keep the shift kernels whatever a backbone's init_cfg did to Conv2d
        layers (MMEngine runs this after the parent's init, before any
        pretrained checkpoint is loaded)."""
        super().init_weights()
        self.reset_parameters()

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Local window attention. q, k, v (B, C, H, W) -> (B, C, H', W')."""
        h, w = q.size(2), q.size(3)
        s, dil, ka = self.stride, self.dilation, self.kernel_att
        pe = self.conv_p(position_grid(h, w, q))                   # (1, d, H, W)
        heads = (-1, self.head_dim, h, w)                          # (B*N, d, H, W)
        qa = q.reshape(heads)[..., ::s, ::s] * self.head_dim ** -0.5  # (B*N, d, H', W')
        ho, wo = qa.size(2), qa.size(3)
        pad = dil * (ka - 1) // 2
        kp = reflect_pad(k.reshape(heads), pad)
        vp = reflect_pad(v.reshape(heads), pad)
        pep = reflect_pad(pe, pad)

        def window(t, j):  # strided view of offset j of every window
            oy, ox = (j // ka) * dil, (j % ka) * dil
            return t[..., oy:oy + (ho - 1) * s + 1:s, ox:ox + (wo - 1) * s + 1:s]

        # q . pe_q is the same for every offset of a window: softmax drops it.
        logits = torch.stack([(qa * window(kp, j)).sum(1) - (qa * window(pep, j)).sum(1)
                              for j in range(ka * ka)], 1)         # (B*N, K*K, H', W')
        att = logits.softmax(1)
        if self.return_attention:
            self.last_attention = att.detach().unflatten(0, (-1, self.head))
        out = att[:, :1] * window(vp, 0)
        for j in range(1, ka * ka):
            out = out.addcmul_(att[:, j:j + 1], window(vp, j))
        return out.reshape(-1, self.out_channels, ho, wo)

    def convolution(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Shift-kernel convolution path. q, k, v (B, C, H, W) -> (B, C, H', W')."""
        h, w = q.size(2), q.size(3)
        qkv = torch.cat([t.reshape(-1, self.head, self.head_dim, h * w)
                         for t in (q, k, v)], 1)                   # (B, 3N, d, HW)
        f = self.fc(qkv)                                           # (B, kc^2, d, HW)
        f = f.transpose(1, 2).reshape(-1, self.head_dim * self.kernel_conv ** 2, h, w)
        return self.dep_conv(f)                                    # (B, C, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        return self.rate1 * self.attention(q, k, v) + self.rate2 * self.convolution(q, k, v)
