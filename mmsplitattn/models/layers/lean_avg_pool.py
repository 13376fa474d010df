"""Average pooling that keeps nothing for backward."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair


class _AvgPool2dFunction(torch.autograd.Function):
    """``F.avg_pool2d`` whose backward needs only the input's shape (autograd's
    keeps the whole input alive until backward)."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override)
        ctx.shape = x.shape
        ctx.channels_last = (x.dim() == 4 and not x.is_contiguous()
                             and x.is_contiguous(memory_format=torch.channels_last))
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode,
                            count_include_pad, divisor_override)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        # the kernel reads only the input's sizes: a one-element stand-in
        shape_only = grad.new_empty(()).expand(ctx.shape)
        grad_x = torch.ops.aten.avg_pool2d_backward(grad, shape_only, *ctx.args)
        if ctx.channels_last:
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return (grad_x, ) + (None, ) * 6


class LeanAvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` (same arguments and results) that does not keep its
    input for backward. Shapes: (B, C, H, W) -> (B, C, H', W')."""

    def forward(self, x):
        if not (x.requires_grad and torch.is_grad_enabled()) or torch.compiler.is_compiling():
            return super().forward(x)
        return _AvgPool2dFunction.apply(
            x, _pair(self.kernel_size), _pair(self.stride), _pair(self.padding),
            self.ceil_mode, self.count_include_pad, self.divisor_override)
