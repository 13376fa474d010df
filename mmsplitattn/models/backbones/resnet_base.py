"""The ResNet skeleton every backbone of the package is built on.

It is mmseg's ResNet (stem, stages, ``ResLayer`` with ``contract_dilation`` /
``multi_grid``, ``plugins``, ``frozen_stages``, ``norm_eval``, ``with_cp``),
so parameter names are those of mmdet/mmseg/torchvision ResNets and their
checkpoints load, and its defaults are mmseg's (``norm_eval=False``,
``stem_channels=64``; mmdet's ResNet defaults to ``norm_eval=True``). This
class adds what a subclass only declares:

* ``arch_settings`` {depth: (block, stage_blocks)} and ``block_kwargs`` —
  the block-specific arguments, forwarded to every block;
* argument checks up front, each a ``ValueError`` naming the bad value;
* ``zero_init_residual`` for any block with a ``norm3`` (mmseg only applies
  it to its own ``Bottleneck`` class).

Every forward calls the registered modules (so hooks, ``fuse_conv_bn``,
export and tracing see the model that runs); speed and memory options are
the upstream ones (``with_cp``; ``mmcv.cnn.fuse_conv_bn`` for inference).
"""
from typing import Optional

import torch
import torch.utils.checkpoint as cp
from mmseg.models.backbones.resnet import Bottleneck as _MMSegBottleneck
from mmseg.models.backbones.resnet import ResNet

from ..checks import check_choice, check_int


class Bottleneck(_MMSegBottleneck):
    """mmseg's bottleneck (torchvision names: conv1, bn1, conv2, bn2, conv3,
    bn3, downsample.{0,1}) with its plugins applied one after another
    (mmseg's applies only the last of several at one position). Subclasses
    change the middle of the block through :meth:`forward_conv2`.

    Shapes: x (B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.with_plugins:
            self.after_conv1_plugin_names = []
            self.after_conv2_plugin_names = []
            self.after_conv3_plugin_names = []

    def forward_plugin(self, x: torch.Tensor, plugin_names: list) -> torch.Tensor:
        for name in plugin_names:
            x = getattr(self, name)(x)
        return x

    def forward_conv2(self, x: torch.Tensor) -> torch.Tensor:
        """(B, width, H, W) -> (B, width, H', W'): conv2 -> norm2 -> ReLU."""
        return self.relu(self.norm2(self.conv2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def _inner_forward(x):
            out = self.relu(self.norm1(self.conv1(x)))
            out = self.forward_plugin(out, self.after_conv1_plugin_names)
            out = self.forward_conv2(out)
            out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = self.norm3(self.conv3(out))
            out = self.forward_plugin(out, self.after_conv3_plugin_names)
            identity = x if self.downsample is None else self.downsample(x)
            return out + identity

        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(_inner_forward, x, use_reentrant=False)
        else:
            out = _inner_forward(x)
        return self.relu(out)


class ResNetBase(ResNet):
    """ResNet skeleton; subclasses set ``arch_settings`` and pass
    ``block_kwargs`` (dict) for their block.

    Shapes: x (B, in_channels, H, W) -> tuple of the ``out_indices`` stage
    outputs, stage i having ``base_channels * 2**i * expansion`` channels.
    """

    styles = ('pytorch', 'caffe')

    def __init__(self, depth: int, block_kwargs: Optional[dict] = None, **kwargs):
        if 'stem_channels' in kwargs and kwargs['stem_channels'] is None:  # mmdet's default
            kwargs['stem_channels'] = kwargs.get('base_channels', 64)
        # per-stage defaults follow num_stages (mmseg's are fixed 4-tuples)
        num_stages = kwargs.get('num_stages', 4)
        if num_stages in (1, 2, 3, 4):
            for name, default in (('strides', (1, 2, 2, 2)), ('dilations', (1, 1, 1, 1)),
                                  ('out_indices', (0, 1, 2, 3)),
                                  ('stage_with_dcn', (False, ) * 4)):
                kwargs.setdefault(name, default[:num_stages])
        self._check_args(depth, kwargs)
        self.block_kwargs = dict(block_kwargs or {})
        self._zero_init = (kwargs.get('zero_init_residual', True)
                           and kwargs.get('init_cfg') is None
                           and kwargs.get('pretrained') is None)
        super().__init__(depth, **kwargs)

    def _check_args(self, depth, kwargs):
        check_choice('depth', depth, self.arch_settings)
        check_choice('style', kwargs.get('style', 'pytorch'), self.styles)
        num_stages = kwargs.get('num_stages', 4)
        if num_stages not in (1, 2, 3, 4):
            raise ValueError(f'num_stages must be 1, 2, 3 or 4, got {num_stages!r}')
        for name in ('strides', 'dilations', 'stage_with_dcn'):
            value = kwargs.get(name)
            if value is not None and len(value) != num_stages:
                raise ValueError(f'{name} must have num_stages={num_stages} '
                                 f'entries, got {tuple(value)}')
        for name in ('strides', 'dilations'):
            for v in kwargs.get(name) or ():
                check_int(f'every entry of {name}', v)
        for i in kwargs.get('out_indices', (0, 1, 2, 3)):
            if not 0 <= i < num_stages:
                raise ValueError(f'out_indices must be in [0, {num_stages - 1}]'
                                 f' (num_stages={num_stages}), got {i!r}')
        frozen = kwargs.get('frozen_stages', -1)
        if not -1 <= frozen <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], '
                             f'got {frozen!r}')
        for name in ('stem_channels', 'base_channels', 'in_channels'):
            if name in kwargs:
                check_int(name, kwargs[name])
        stem = kwargs.get('stem_channels', 64)
        if kwargs.get('deep_stem') and stem % 2:
            raise ValueError(f'stem_channels must be even with deep_stem, got {stem}')

    def train(self, mode: bool = True) -> 'ResNetBase':
        """As mmseg's (frozen stages stay frozen, ``norm_eval`` keeps BNs in
        eval mode), returning ``self`` as ``nn.Module.train`` does."""
        super().train(mode)
        return self

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(**kwargs, **self.block_kwargs)

    def init_weights(self):
        super().init_weights()
        if self._zero_init:
            for m in self.modules():
                if isinstance(m, self.block) and hasattr(m, 'norm3'):
                    m.norm3.weight.data.zero_()
                    m.norm3.bias.data.zero_()
