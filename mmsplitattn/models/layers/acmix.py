"""ACmix (Pan et al., CVPR 2022): a shared 1x1 projection feeding both a
local self-attention and a shift-kernel convolution, mixed by learnt rates."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.utils.checkpoint import checkpoint

from mmsplitattn.registry import MODELS
from ..checks import check_divisible, check_int

TILE = 8  # queries attend in TILE x TILE blocks of output positions


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


def reflect(i: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Whole-number positions ``i`` (float, as every index here: exact below
    2**24, and what ONNX's opset-11 Clip/Mod take) mapped into 0..last by
    reflection at the borders (``-1 -> 1``, ``last + 1 -> last - 1``,
    repeating as far out as needed; all zeros when ``last == 0``): the
    positions ``F.pad(mode='reflect')`` reads, for any padding."""
    period = (2 * last).clamp(min=1)
    i = i.remainder(period)
    return torch.where(i <= last, i, period - i)


def tile_indices(x: torch.Tensor, dim: int, stride: int, span: int, pad: int
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices along dim -2 or -1 of x (..., H, W) for the blocked
    window attention of :meth:`ACmix.attention`, all from x itself (valid at
    every size). With ``n`` the map's size and ``n' = ceil(n / stride)``
    outputs, tiled in ``t = ceil(n' / TILE)`` tiles:

    * queries (t, TILE): the input position of each output of each tile;
    * keys (t, span): the reflection-padded positions the tile's windows
      read, ``stride * first output - pad + 0..span-1``;
    * outputs (n',): 0..n'-1 (int64), to crop the tiled map to the output's size.

    Queries and keys stay float (for :func:`tiles`' index arithmetic).

    Positions past the map (the last tile's tail) are reflected in too: valid
    indices, whose outputs are cropped away.
    """
    positions = _positions(x, dim).flatten()                       # 0..n-1
    last = positions[-1:]
    outputs = positions[::stride] / stride                         # 0..n'-1
    first = outputs[::TILE, None]                                  # (t, 1)
    tile = torch.arange(TILE, device=x.device, dtype=positions.dtype)
    keys = torch.arange(span, device=x.device, dtype=positions.dtype)
    queries = reflect(stride * (first + tile), last)
    keys = reflect(stride * first - pad + keys, last)
    return queries, keys, outputs.long()


def window_mask(tile: int, span: int, stride: int, dilation: int, kernel: int,
                device: torch.device) -> torch.Tensor:
    """(tile**2, span**2) bool: which of a tile's span x span keys are in the
    kernel x kernel window (``dilation``-spaced) of each of its queries."""
    offset = (torch.arange(span, device=device)[None] -
              stride * torch.arange(tile, device=device)[:, None])   # (tile, span)
    axis = (offset >= 0) & (offset <= dilation * (kernel - 1)) & (offset % dilation == 0)
    return (axis[:, None, :, None] & axis[None, :, None, :]).reshape(tile * tile, span * span)


def tiles(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """x (B, d, N, H, W) at the (t, r) ``rows`` and (t', c) ``cols``:
    (B, d, N, t, r, t', c), one gather over the flattened map. Sizes are
    taken from the tensors (no constants in traced graphs)."""
    width = _positions(x, -1)[:, -1:] + 1                          # W, (1, 1)
    index = rows[:, :, None, None] * width + cols[None, None]      # (t, r, t', c)
    x = x.flatten(-2).index_select(-1, index.flatten().long())
    return x.reshape(x.size(0), x.size(1), x.size(2), rows.size(0), rows.size(1),
                     cols.size(0), cols.size(1))


class Kernel(nn.Module):
    """The parameter ``weight`` of shape ``shape``: a convolution kernel that
    is never applied on its own. ACmix's ``fc`` and ``dep_conv`` are two, the
    factors of the one convolution of its convolution path."""

    def __init__(self, *shape: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(shape))

    def extra_repr(self) -> str:
        return f'weight: {tuple(self.weight.shape)}'


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
    Parameter names and shapes are the official ones, so official state dicts
    load.

    How it is computed (the same values, as little kept for backward as a
    convolution keeps):

    * q, k and v are stored once, head-interleaved as the convolution path
      reads them; that tensor is all either path keeps for backward;
    * the attention is recomputed in backward (non-reentrant
      ``torch.utils.checkpoint``), so its window weights are never kept; it
      runs in TILE x TILE blocks of queries, each a matrix product with the
      keys its windows cover and a mask of the window (the window is never
      unfolded per query);
    * ``fc`` then ``dep_conv`` is one grouped convolution, whose kernel
      (``dep_conv.weight`` times ``fc.weight``, times ``rate2``) is composed
      at each forward, so gradients reach both.

    Any H, W (output ``ceil(H / stride)``), any odd kernels, real dilation,
    any device.

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
        kc = kernel_conv
        self.fc = Kernel(kc * kc, 3 * head, 1, 1)                  # official: 1x1 conv
        self.dep_conv = Kernel(out_channels, kc * kc, kc, kc)      # official: grouped conv
        self.rate1 = nn.Parameter(torch.empty(1))
        self.rate2 = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self):
        """rate1 = rate2 = 0.5; ``fc`` Kaiming (fan_out) as the official
        network's init gives it; dep_conv = shift kernels (output channel o,
        input i of its group: 1 at position (i // kc, i % kc))."""
        nn.init.constant_(self.rate1, 0.5)
        nn.init.constant_(self.rate2, 0.5)
        nn.init.kaiming_normal_(self.fc.weight, mode='fan_out', nonlinearity='relu')
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
        """Local window attention, blocked. q, k, v (B, d, N, H, W) -> (B, C, H', W').

        Each TILE x TILE block of outputs takes, as one matrix product, the
        logits of its queries against the ``span x span`` keys that their
        windows cover; the mask keeps each query's own ``kernel_att**2``
        window, so the softmax is the window's, exactly.
        """
        s, dil, ka = self.stride, self.dilation, self.kernel_att
        pad = dil * (ka - 1) // 2
        span = s * (TILE - 1) + dil * (ka - 1) + 1
        q_rows, k_rows, out_rows = tile_indices(q, -2, s, span, pad)
        q_cols, k_cols, out_cols = tile_indices(q, -1, s, span, pad)
        # q . pe_q is the same for every key of a window: softmax drops it.
        k = k - self.conv_p(position_grid(q))[:, :, None]           # k_j - pe_j
        # (B, N, tile rows, tile cols, TILE**2 | span**2, d), the keys' d then span**2
        qt = tiles(q, q_rows, q_cols).permute(0, 2, 3, 5, 4, 6, 1).flatten(4, 5)
        kt = tiles(k, k_rows, k_cols).permute(0, 2, 3, 5, 1, 4, 6).flatten(5, 6)
        vt = tiles(v, k_rows, k_cols).permute(0, 2, 3, 5, 4, 6, 1).flatten(4, 5)
        mask = window_mask(TILE, span, s, dil, ka, q.device)
        logits = (qt * self.head_dim ** -0.5) @ kt                 # (..., TILE**2, span**2)
        att = logits.masked_fill(~mask, float('-inf')).softmax(-1)
        if self.return_attention:
            self.last_attention = self.window_weights(att.detach(), mask, out_rows, out_cols)
        out = att @ vt                                             # (..., TILE**2, d)
        out = out.reshape(out.size(0), out.size(1), out.size(2), out.size(3), TILE, TILE,
                          out.size(5)).permute(0, 1, 6, 2, 4, 3, 5)  # (B, N, d, t, T, t, T)
        out = out.flatten(1, 2).flatten(2, 3).flatten(3, 4)
        return out.index_select(-2, out_rows).index_select(-1, out_cols)

    def window_weights(self, att: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor,
                       cols: torch.Tensor) -> torch.Tensor:
        """The blocked weights ``att`` (B, N, t, t, TILE**2, span**2) as each
        query's window: (B, N, kernel_att**2, H', W'), offsets row-major."""
        w = att[..., mask]                                          # (B, N, t, t, T*T*K*K)
        w = w.reshape(w.size(0), w.size(1), w.size(2), w.size(3), TILE, TILE, -1)
        w = w.permute(0, 1, 6, 2, 4, 3, 5).flatten(3, 4).flatten(4, 5)
        return w.index_select(-2, rows).index_select(-1, cols)

    def convolution(self, qkv: torch.Tensor) -> torch.Tensor:
        """Shift-kernel convolution path times rate2.
        qkv (B, d * 3N, H, W), channel ``c * 3N + i`` the i-th of q/k/v's heads
        (q's N, k's, v's) at channel c of the head -> (B, C, H', W').

        The official ``dep_conv(fc(qkv))``: ``fc`` mixes the 3N q/k/v heads
        into ``kernel_conv**2`` maps m per channel c, then group c of
        ``dep_conv`` convolves them. Both are linear, so they are one grouped
        convolution, whose kernel ``sum_m dep_conv[o, m] * fc[m, i]`` is
        ``dep_conv``'s kernels transposed-convolved with ``fc``'s.
        """
        kernel = F.conv_transpose2d(self.dep_conv.weight, self.fc.weight)  # (C, 3N, kc, kc)
        kc = self.kernel_conv
        return F.conv2d(qkv, self.rate2 * kernel, None, self.stride,
                        self.dilation * (kc - 1) // 2, self.dilation, self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, in_channels, H, W) -> (B, out_channels, H', W')."""
        def heads(t):  # (B, C, H, W) -> (B, d, N, H, W), a view
            return t.reshape(t.size(0), self.head, self.head_dim, t.size(2),
                             t.size(3)).transpose(1, 2)

        q, k, v = self.conv1(x), self.conv2(x), self.conv3(x)
        qkv = torch.stack([heads(q), heads(k), heads(v)], 2)       # (B, d, 3, N, H, W)
        # recomputed in backward, rate1's product too (so its input is not kept);
        # it draws no random numbers: no RNG state to keep
        out_att = checkpoint(lambda q, k, v: self.rate1 * self.attention(q, k, v),
                             qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], use_reentrant=False,
                             preserve_rng_state=False)
        return out_att + self.convolution(qkv.flatten(1, 3))
