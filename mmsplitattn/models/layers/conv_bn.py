"""Convolution + BatchNorm with the BN folded into the convolution in inference."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# exactly these types: SyncBN's statistics are global, subclasses may differ
PLAIN_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _can_fold(conv, norm):
    """Inference (no grad, BN using running statistics), plain modules, eager.
    SyncBN in eval mode normalises with running statistics like BN."""
    return (not torch.is_grad_enabled() and type(conv) is nn.Conv2d
            and conv.padding_mode == 'zeros'
            and type(norm) in PLAIN_BATCH_NORMS + (nn.SyncBatchNorm, )
            and not norm.training and norm.running_mean is not None
            and not torch.compiler.is_compiling())


def _folded(conv, norm, memory_format):
    """``(weight, bias)`` of ``norm(conv(.))`` as one convolution, cached on
    ``conv`` until any of the tensors it comes from changes (in-place updates,
    ``load_state_dict``, ``.to()``; not edits through ``.data``, which bump no
    version counter: the backbones drop the cache on leaving eval mode)."""
    sources = (conv.weight, conv.bias, norm.weight, norm.bias,
               norm.running_mean, norm.running_var)
    key = tuple((t.data_ptr(), t._version) if t is not None else None
                for t in sources) + (norm.eps, memory_format)
    cached = getattr(conv, '_folded_bn', None)
    if cached is None or cached[0] != key:
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        weight = (conv.weight * scale.view(-1, 1, 1, 1)).contiguous(
            memory_format=memory_format)
        cached = conv._folded_bn = (key, weight, shift)
    return cached[1], cached[2]


def drop_folded_weights(module):
    """Forget the folded weights cached on ``module`` and its submodules."""
    for m in module.modules():
        m.__dict__.pop('_folded_bn', None)


class _Conv1x1MatMul(torch.autograd.Function):
    """A 1x1 convolution as per-sample matmuls: x (B, Cin, N), weight
    (Cout, Cin) -> (B, Cout, N); the weight gradient accumulates per sample
    (no (B, Cout, Cin) temporary)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return torch.matmul(weight, x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.matmul(weight.t(), grad)
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(grad[0], x[0].t())
            for g, xb in zip(grad[1:], x[1:]):
                grad_w.addmm_(g, xb.t())
        return grad_x, grad_w


# largest map (H * W) on which a 1x1 convolution runs as matmuls (14x14)
_MATMUL_MAX_PIXELS = 14 * 14


def _is_pointwise(conv):
    return (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0)
            and conv.groups == 1)


def conv2d(conv, x):
    """``conv(x)``; in CPU training a 1x1 convolution over a map of at most
    14x14 runs as matmuls, which with their backward are faster than
    oneDNN's there (ResNeSt-50 stages 3-4: up to 1.7x per layer, see
    ``tools/analysis_tools/benchmark_layers.py``), and equal
    to float rounding. Under autocast it stays a convolution.

    Shapes: x (B, Cin, H, W) -> (B, Cout, H', W').
    """
    if not (torch.is_grad_enabled() and x.device.type == 'cpu' and type(conv) is nn.Conv2d
            and _is_pointwise(conv) and x.dim() == 4
            and x.size(2) * x.size(3) <= _MATMUL_MAX_PIXELS and x.is_contiguous()
            and x.dtype == conv.weight.dtype and not torch.is_autocast_enabled('cpu')
            and not torch.compiler.is_compiling()):
        return conv(x)
    b, c, h, w = x.shape
    out = _Conv1x1MatMul.apply(x.view(b, c, h * w), conv.weight.view(-1, c))
    if conv.bias is not None:
        out = out + conv.bias.view(-1, 1)
    return out.view(b, -1, h, w)


def conv_bn(conv, norm, x):
    """``norm(conv(x))``; in inference with a plain ``nn.Conv2d`` and
    ``nn.BatchNorm2d`` it is one convolution with folded, cached weights (in
    ``x``'s memory format), which saves the BN pass. On CPU, a channels_last
    1x1 convolution over a map of at most 14x14 is then one GEMM over the
    (B*H*W, Cin) rows, faster than oneDNN's there (ResNeSt-50 stage 4:
    1.1 vs 1.3-1.5 ms per layer, ``benchmark_layers.py``). Equal to float
    rounding.

    Shapes: x (B, Cin, H, W) -> (B, Cout, H', W').
    """
    if not _can_fold(conv, norm):
        return norm(conv2d(conv, x))
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    weight, bias = _folded(conv, norm, torch.channels_last if channels_last
                           else torch.contiguous_format)
    if (channels_last and x.device.type == 'cpu' and _is_pointwise(conv)
            and x.size(2) * x.size(3) <= _MATMUL_MAX_PIXELS):
        b, c, h, w = x.shape
        rows = torch.addmm(bias, x.permute(0, 2, 3, 1).reshape(-1, c), weight.view(-1, c).t())
        return rows.view(b, h, w, -1).permute(0, 3, 1, 2)  # (B, Cout, H, W) channels_last
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
