"""ACmix (Pan et al., CVPR 2022): a shared 1x1 projection feeding both a
local self-attention and a shift-kernel convolution, mixed by learnt rates."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmsplitattn.registry import MODELS
from ..checks import check_divisible, check_int


def _positions(x: torch.Tensor, dim: int) -> torch.Tensor:
    """0, 1, ..., n - 1 (float32) along dim -2 or -1 of ``x``, shaped (n, 1)
    or (1, n). Made from ``x`` itself rather than from its size, so traced
    and exported graphs stay valid at every input size."""
    plane = x[(0, ) * (x.dim() - 2)]                              # (H, W)
    line = plane[:, :1] if dim == -2 else plane[:1]
    return torch.ones_like(line, dtype=torch.float32).cumsum(dim) - 1


def position_grid(x: torch.Tensor) -> torch.Tensor:
    """(1, 2, H, W) for x (..., H, W): linspace(-1, 1, W) along w, then
    linspace(-1, 1, H) along h, in x's dtype and on x's device."""
    ys, xs = _positions(x, -2), _positions(x, -1)                  # (H, 1), (1, W)
    loc_h = ys / ys[-1:].clamp(min=1) * 2 - 1
    loc_w = xs / xs[:, -1:].clamp(min=1) * 2 - 1
    grid = loc_w * torch.ones_like(loc_h), loc_h * torch.ones_like(loc_w)
    return torch.stack(grid)[None].to(x.dtype)


def _reflect_index(positions: torch.Tensor, pad: int) -> torch.Tensor:
    """Indices (n + 2 * pad,) into an axis of positions 0..n-1 that
    reflect-pad it by ``pad`` on both sides: ``-1 -> 1``, ``n -> n - 2``,
    repeating when ``pad >= n``, all zeros when ``n == 1``."""
    positions = positions.flatten().long()
    last = positions[-1:]                                          # n - 1, shape (1,)
    period = (2 * last).clamp(min=1)
    outside = torch.arange(1, pad + 1, device=positions.device)
    i = torch.cat([-outside.flip(0), positions, last + outside]).remainder(period)
    return torch.where(i <= last, i, period - i)


def reflect_indices(x: torch.Tensor, pad: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) indices that reflect-pad the last two dims of x by ``pad``
    (``x.index_select(-2, rows).index_select(-1, cols)``): the same as
    ``F.pad(x, [pad] * 4, mode='reflect')`` where that works (pad < size);
    beyond it the reflection repeats, so maps smaller than the window pad too."""
    return (_reflect_index(_positions(x, -2), pad), _reflect_index(_positions(x, -1), pad))


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
        s, dil, ka = self.stride, self.dilation, self.kernel_att
        pad = dil * (ka - 1) // 2

        def heads(t):  # (B, C, H, W) -> (B*N, d, H, W)
            return t.unflatten(1, (self.head, self.head_dim)).flatten(0, 1)

        def window(t, j):  # strided view of offset j of every window of padded t
            oy, ox = (j // ka) * dil, (j % ka) * dil
            return t[..., oy:(oy - 2 * pad) or None:s, ox:(ox - 2 * pad) or None:s]

        rows, cols = reflect_indices(q, pad)  # taken from q: exported graphs stay dynamic

        def padded(t):  # (..., H, W) -> (..., H + 2p, W + 2p), reflection padding
            return t.index_select(-2, rows).index_select(-1, cols)

        qa = heads(q)[..., ::s, ::s] * self.head_dim ** -0.5       # (B*N, d, H', W')
        kp, vp = padded(heads(k)), padded(heads(v))                # (B*N, d, H+2p, W+2p)
        pep = padded(self.conv_p(position_grid(q)))                # (1, d, H+2p, W+2p)
        # q . pe_q is the same for every offset of a window: softmax drops it.
        logits = torch.stack([(qa * window(kp, j)).sum(1) - (qa * window(pep, j)).sum(1)
                              for j in range(ka * ka)], 1)         # (B*N, K*K, H', W')
        att = logits.softmax(1)
        if self.return_attention:
            self.last_attention = att.detach().unflatten(0, (-1, self.head))
        out = att[:, :1] * window(vp, 0)
        for j in range(1, ka * ka):
            out = out.addcmul_(att[:, j:j + 1], window(vp, j))   # (B*N, d, H', W')
        return out.unflatten(0, (-1, self.head)).flatten(1, 2)

    def convolution(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Shift-kernel convolution path. q, k, v (B, C, H, W) -> (B, C, H', W').

        ``fc`` mixes the 3N q/k/v heads of each of the d channels of each
        position: a 1x1 convolution over (B, 3N, d*H, W).
        """
        qkv = torch.cat([t.unflatten(1, (self.head, self.head_dim)).flatten(2, 3)
                         for t in (q, k, v)], 1)                   # (B, 3N, d*H, W)
        f = self.fc(qkv).unflatten(2, (self.head_dim, -1))         # (B, kc^2, d, H, W)
        return self.dep_conv(f.transpose(1, 2).flatten(1, 2))      # (B, C, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        return self.rate1 * self.attention(q, k, v) + self.rate2 * self.convolution(q, k, v)
