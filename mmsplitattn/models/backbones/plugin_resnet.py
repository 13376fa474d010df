"""ResNets with an attention module in chosen stages: SEM-ResNet and
SPANet-ResNet. Both are the shared ResNet skeleton plus the module, either
inside every bottleneck as an mmdet-style plugin (``layerN.M.sem.*``) or
once after the last bottleneck of a stage (``layerN.<num_blocks>.*``), so the
other parameter names are torchvision's/mmdet's and ImageNet ResNet weights
load into everything but the attention modules."""
import inspect
from typing import Optional, Sequence

from mmsplitattn.registry import MODELS
from ..checks import check_choice
from .resnet_base import Bottleneck, ResNetBase

RESNET_ARCH = {  # 14 and 26 are the small bottleneck ResNets of ResNeSt/ACmix
    14: (Bottleneck, (1, 1, 1, 1)),
    26: (Bottleneck, (2, 2, 2, 2)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
POSITIONS = ('after_stage', 'after_conv1', 'after_conv2', 'after_conv3')


class AttentionResNet(ResNetBase):
    """ResNet-14/26/50/101/152 with the attention module ``attention_type``
    in the stages flagged in ``stages``: at ``position`` 'after_convN' of
    every bottleneck (before any other ``plugins`` there), or once,
    'after_stage', behind the stage's last bottleneck.

    The module gets the backbone's ``norm_cfg`` unless ``attention_cfg``
    sets its own (when it takes one), so SyncBN/GN configs reach it.
    ``deep_stem=True`` gives the V1c stem, ``avg_down=True`` with it the D
    variant; ``strides``/``dilations``/``contract_dilation`` the D8 layout.

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        attention_cfg (dict, optional): Arguments of the attention module.
        stages (Sequence[bool], optional): One flag per stage; default
            ``default_stages`` cut to ``num_stages``.
        position (str): One of 'after_stage', 'after_conv1/2/3'.
        **kwargs: Those of mmdet's/mmseg's ResNet.

    Shapes: x (B, 3, H, W) -> stage i (B, 256 * 2**i, H / 2**(i+2), W / 2**(i+2)).
    """

    arch_settings = RESNET_ARCH
    attention_type = None  # the registered name of the attention module
    default_stages = (True, True, True, True)

    def __init__(self,
                 depth: int,
                 attention_cfg: Optional[dict] = None,
                 stages: Optional[Sequence[bool]] = None,
                 position: str = 'after_conv3',
                 plugins: Optional[list] = None,
                 **kwargs):
        check_choice('position', position, POSITIONS)
        num_stages = kwargs.get('num_stages', 4)
        if stages is None:
            stages = self.default_stages[:num_stages]
        if len(stages) != num_stages:
            raise ValueError(f'stages must have num_stages={num_stages} flags, got {stages!r}')
        self.attention_cfg = dict(type=self.attention_type, **(attention_cfg or {}))
        if 'norm_cfg' in inspect.signature(MODELS.get(self.attention_type)).parameters:
            self.attention_cfg.setdefault('norm_cfg', kwargs.get('norm_cfg', dict(type='BN')))
        self.attention_stages = tuple(bool(s) for s in stages)
        self.attention_position = position
        plugins = list(plugins or [])
        if position != 'after_stage':
            plugins.insert(0, dict(cfg=self.attention_cfg, position=position,
                                   stages=self.attention_stages))
        super().__init__(depth, plugins=plugins or None, **kwargs)
        if position == 'after_stage':
            for stage, layer_name in enumerate(self.res_layers):
                self.add_stage_attention(stage, getattr(self, layer_name))
            self._freeze_stages()  # the new modules of frozen stages too

    def add_stage_attention(self, stage: int, layer) -> None:
        """Append the attention module to stage ``stage``'s ``layer`` (a
        ``ResLayer``) if that stage is flagged."""
        if self.attention_stages[stage]:
            channels = self.base_channels * 2**stage * self.block.expansion
            layer.append(MODELS.build(dict(self.attention_cfg, in_channels=channels)))


@MODELS.register_module()
class SEMResNet(AttentionResNet):
    """ResNet with a Switchable Excitation Module after bn3 of every
    bottleneck, before the residual addition, as SE-ResNet places SE.

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        attention_cfg (dict, optional): Arguments of :class:`mmsplitattn.SEM`
            (``reduction``, ``kernel_size``).
        stages (Sequence[bool], optional): Stages with SEM; default all.
        position (str): Default 'after_conv3' (SE's place).
        **kwargs: Those of mmdet's/mmseg's ResNet.
    """

    attention_type = 'mmsplitattn.SEM'


@MODELS.register_module()
class SPANetResNet(AttentionResNet):
    """ResNet with salient-positions attention blocks (:class:`SPABlock`).

    By default one SPA block follows the last bottleneck of each of the two
    lowest stages (``stages=(True, True, False, False)``,
    ``position='after_stage'``), the way Non-local blocks are inserted: the
    paper finds the block helps most at low levels, where there are many
    positions to choose from. ``position='after_conv3'`` puts one in every
    bottleneck of the flagged stages (costs in ``docs/backbones.md``).

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        attention_cfg (dict, optional): Arguments of
            :class:`mmsplitattn.SPABlock` (``k``, ``adaptive``, ...).
        stages (Sequence[bool], optional): Stages with SPA blocks.
        position (str): Default 'after_stage'.
        **kwargs: Those of mmdet's/mmseg's ResNet.
    """

    attention_type = 'mmsplitattn.SPABlock'
    default_stages = (True, True, False, False)

    def __init__(self, depth: int, position: str = 'after_stage', **kwargs):
        super().__init__(depth, position=position, **kwargs)
