"""Convolution + BatchNorm with the BN folded into the convolution in inference."""
import torch
import torch.nn as nn
import torch.nn.functional as F

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
    version counter: the backbones drop the cache on ``train()``/``eval()``)."""
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


def conv_bn(conv, norm, x):
    """``norm(conv(x))``; in inference with a plain ``nn.Conv2d`` and
    ``nn.BatchNorm2d`` it is one convolution with folded, cached weights (in
    ``x``'s memory format), which saves the BN pass. Equal to float rounding.

    Shapes: x (B, Cin, H, W) -> (B, Cout, H', W').
    """
    if not _can_fold(conv, norm):
        return norm(conv(x))
    memory_format = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                     and not x.is_contiguous() else torch.contiguous_format)
    weight, bias = _folded(conv, norm, memory_format)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
