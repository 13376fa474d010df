"""The ResNet skeleton every backbone of the package is built on.

It is mmseg's ResNet (stem, stages, ``ResLayer`` with ``contract_dilation`` /
``multi_grid``, ``plugins``, ``frozen_stages``, ``norm_eval``, ``with_cp``),
so parameter names are those of mmdet/mmseg/torchvision ResNets and their
checkpoints load. This class adds what a subclass only declares:

* ``arch_settings`` {depth: (block, stage_blocks)} and ``block_kwargs`` —
  the block-specific arguments, forwarded to every block;
* argument checks up front, each a ``ValueError`` naming the bad value;
* ``zero_init_residual`` for any block with a ``norm3`` (mmseg only applies
  it to its own ``Bottleneck`` class);
* a leaner training step: BN + ReLU outputs (stem and inside the blocks) are
  recomputed in backward instead of kept (:class:`RecomputedBNReLU`);
* a faster inference: BNs folded into their convolutions (:func:`conv_bn`)
  and (``inference_channels_last``) channels_last activations on CPU, with
  contiguous tensors in and out.
"""
import torch
import torch.utils.checkpoint as cp
from mmseg.models.backbones.resnet import Bottleneck as _MMSegBottleneck
from mmseg.models.backbones.resnet import ResNet

from ..checks import check_choice, check_int
from ..layers.conv_bn import conv_bn, drop_folded_weights
from ..layers.recompute import RecomputedBNReLU


def _contiguous_by_rows(x):
    """``x.contiguous()`` for a channels_last (B, C, H, W) tensor, copied in
    blocks of 8 rows: on CPU the one-piece transposition is up to 4x slower
    for large H*W (``tools/analysis_tools/benchmark_layers.py``)."""
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for dst, src in zip(out.split(8, 2), x.split(8, 2)):
        dst.copy_(src)
    return out


class Bottleneck(_MMSegBottleneck):
    """mmseg's bottleneck (torchvision names: conv1, bn1, conv2, bn2, conv3,
    bn3, downsample.{0,1}) with its plugins applied one after another
    (mmseg's applies only the last of several at one position) and the
    conv1/conv2 BN + ReLU outputs recomputed in backward, not kept.
    Subclasses change the middle of the block through :meth:`forward_conv2`.

    Shapes: x (B, inplanes, H, W) -> (B, 4 * planes, H / stride, W / stride).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.with_plugins:
            self.after_conv1_plugin_names = []
            self.after_conv2_plugin_names = []
            self.after_conv3_plugin_names = []

    def forward_plugin(self, x, plugin_names):
        for name in plugin_names:
            x = getattr(self, name)(x)
        return x

    def forward_conv2(self, x, bn_relu):
        """(B, width, H, W) -> (B, width, H', W'): conv2 -> norm2 -> ReLU."""
        return bn_relu(self.conv2, self.norm2, x)

    def forward_shortcut(self, x):
        """x, or [AvgPool] -> conv -> norm of mmseg's ``downsample``."""
        if self.downsample is None:
            return x
        *pools, conv, norm = self.downsample
        for pool in pools:
            x = pool(x)
        return conv_bn(conv, norm, x)

    def forward(self, x):
        def _inner_forward(x):
            with RecomputedBNReLU() as bn_relu:
                out = bn_relu(self.conv1, self.norm1, x)
                out = self.forward_plugin(out, self.after_conv1_plugin_names)
                out = self.forward_conv2(out, bn_relu)
                out = self.forward_plugin(out, self.after_conv2_plugin_names)
            out = conv_bn(self.conv3, self.norm3, out)
            out = self.forward_plugin(out, self.after_conv3_plugin_names)
            return out.add_(self.forward_shortcut(x))

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
    # CPU inference runs in channels_last inside (contiguous in and out):
    # measured faster for ResNeSt, SEM and SPANet, neutral for ACmix
    inference_channels_last = True

    def __init__(self, depth, block_kwargs=None, **kwargs):
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
        for name in ('strides', 'dilations'):
            value = kwargs.get(name)
            if value is not None and len(value) != num_stages:
                raise ValueError(f'{name} must have num_stages={num_stages} '
                                 f'entries, got {tuple(value)}')
            for v in value or ():
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

    def train(self, mode=True):
        """As mmseg's (frozen stages, ``norm_eval``), returning ``self`` as
        ``nn.Module.train`` does. Leaving or entering training drops the
        folded inference weights (:func:`conv_bn`); ``eval()`` on a model in
        eval mode keeps them. After editing weights through ``.data`` (which
        bumps no version counter) call ``train()`` then ``eval()``."""
        if mode or self.training:
            drop_folded_weights(self)
        super().train(mode)
        return self

    def forward(self, x):
        """x (B, in_channels, H, W) -> tuple of the ``out_indices`` outputs."""
        channels_last = (self.inference_channels_last and not torch.is_grad_enabled()
                         and x.device.type == 'cpu' and x.dim() == 4 and x.is_contiguous())
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with RecomputedBNReLU() as bn_relu:
            if self.deep_stem:  # (conv, norm, ReLU) x 3
                for i in range(0, len(self.stem), 3):
                    x = bn_relu(self.stem[i], self.stem[i + 1], x)
            else:
                x = bn_relu(self.conv1, self.norm1, x)
            x = self.maxpool(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(_contiguous_by_rows(x) if channels_last else x)
        return tuple(outs)

    def make_res_layer(self, **kwargs):
        return super().make_res_layer(**kwargs, **self.block_kwargs)

    def init_weights(self):
        super().init_weights()
        if self._zero_init:
            for m in self.modules():
                if isinstance(m, self.block) and hasattr(m, 'norm3'):
                    m.norm3.weight.data.zero_()
                    m.norm3.bias.data.zero_()
