"""Conv -> BatchNorm -> ReLU whose output autograd does not keep: recomputed
in backward.

In a training step the output of ``relu(bn(y))`` is kept by the operation
that consumes it (a convolution's weight gradient, a weighted sum), while
``y`` is kept anyway by BatchNorm's backward. :class:`RecomputedBNReLU` keeps
only ``y`` and the batch statistics and recomputes the output in backward
(one element-wise pass), which removes one activation per use from the peak.
"""
import threading
import weakref

import torch
from torch.autograd.graph import saved_tensors_hooks

from .conv_bn import PLAIN_BATCH_NORMS, conv2d, conv_bn


class _Replay:
    """Stands in for a saved tensor: ``relu(y * scale + shift)``, computed at
    the first unpack and shared by the later ones of the same step."""

    __slots__ = ('y', 'scale', 'shift', 'uses', 'cached')

    def __init__(self, y, scale, shift):
        self.y, self.scale, self.shift = y, scale, shift
        self.uses, self.cached = 0, None

    def pack(self):
        self.uses += 1
        return self

    def unpack(self):
        out = self.cached
        if out is None:
            shape = (1, -1) + (1, ) * (self.y.dim() - 2)
            out = torch.addcmul(self.shift.view(shape), self.y, self.scale.view(shape))
            out = out.relu_().to(self.y.dtype)
        self.uses -= 1
        self.cached = out if self.uses > 0 else None
        return out


def _batch_norm_affine(norm, y):
    """``norm(y)`` plus the per-channel ``scale, shift`` it applied.

    Follows ``nn.BatchNorm2d.forward`` (momentum, cumulative average,
    running-statistics update) but calls ``native_batch_norm``, which returns
    the batch statistics the module call hides.
    """
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
    use_batch_stats = norm.training or norm.running_mean is None
    track = not norm.training or norm.track_running_stats
    out, mean, invstd = torch.native_batch_norm(
        y, norm.weight, norm.bias, norm.running_mean if track else None,
        norm.running_var if track else None, use_batch_stats, momentum,
        norm.eps)
    with torch.no_grad():
        if not use_batch_stats:
            mean = norm.running_mean
            invstd = torch.rsqrt(norm.running_var + norm.eps)
        scale = invstd if norm.weight is None else invstd * norm.weight
        shift = -mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
    return out, scale, shift


class RecomputedBNReLU:
    """Context in which ``self(conv, norm, x)`` computes
    ``relu(norm(conv(x)))`` and any operation saving that result for backward
    saves a recipe instead. In inference the BN is folded into the
    convolution (:func:`conv_bn`).

    Only plain ``nn.BatchNorm{1,2,3}d`` are recomputed (SyncBN's statistics
    are global, GN/LN have none to reuse). Without grad, under
    ``torch.compile`` (which does its own recomputation) or inside other
    saved-tensor hooks (``with_cp`` checkpointing, CPU offload), everything
    takes the ordinary path. Nested contexts share the outermost one.
    Results equal ``relu(norm(conv(x)))``; gradients agree to float rounding.

    Example::

        with RecomputedBNReLU() as bn_relu:
            out = conv2(bn_relu(conv1, norm1, x))
    """

    _local = threading.local()  # the active outermost context of this thread

    def __enter__(self):
        outer = getattr(self._local, 'scope', None)
        self._hooks = None
        if outer is not None:
            self._targets = outer._targets
            return self
        self._targets = [] if self._can_recompute() else None
        if self._targets is not None:
            self._hooks = saved_tensors_hooks(self._pack, self._unpack)
            self._hooks.__enter__()
            self._local.scope = self
        return self

    def __exit__(self, *exc):
        if self._hooks is not None:
            self._hooks.__exit__(*exc)
            self._local.scope = None
            self._targets.clear()

    @staticmethod
    def _can_recompute():
        top_hooks = getattr(torch._C._autograd, '_top_saved_tensors_default_hooks', None)
        return (torch.is_grad_enabled() and not torch.compiler.is_compiling()
                and (top_hooks is None or top_hooks(False) is None))

    def __call__(self, conv, norm, x):
        if self._targets is None or type(norm) not in PLAIN_BATCH_NORMS:
            return torch.relu_(conv_bn(conv, norm, x))
        y = conv2d(conv, x)
        out, scale, shift = _batch_norm_affine(norm, y)
        # registered before relu_ so that ReLU's own saved result is replaced
        self._targets.append((weakref.ref(out), _Replay(y.detach(), scale, shift)))
        return out.relu_()

    def _pack(self, t):
        for ref, replay in self._targets:
            target = ref()
            # a live target's memory cannot belong to another tensor
            if (target is not None and t.data_ptr() == target.data_ptr()
                    and t.shape == target.shape and t.stride() == target.stride()):
                return replay.pack()
        return t

    @staticmethod
    def _unpack(packed):
        return packed.unpack() if isinstance(packed, _Replay) else packed
