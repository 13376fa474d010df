"""ResNets with an attention module in chosen stages: SEM-ResNet and
SPANet-ResNet. Both are the shared ResNet skeleton plus the module, either
inside every bottleneck as an mmdet-style plugin (``layerN.M.sem.*``) or
once after the last bottleneck of a stage (``layerN.<num_blocks>.*``), so the
other parameter names are torchvision's/mmdet's and ImageNet ResNet weights
load into everything but the attention modules."""
import math

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


class PluginResNet(ResNetBase):
    """ResNet-14/26/50/101/152 with ``plugin_type`` in the stages flagged in
    ``stages``: at ``position`` 'after_convN' of every bottleneck (other
    ``plugins`` come after it), or once, 'after_stage', behind the stage's
    last bottleneck.

    ``deep_stem=True`` gives the V1c stem, ``avg_down=True`` with it the D
    variant; ``strides``/``dilations``/``contract_dilation`` the D8 layout.
    """

    arch_settings = RESNET_ARCH
    plugin_type = None

    def __init__(self, depth, attention_cfg=None, stages=None, position='after_conv3',
                 plugins=None, **kwargs):
        check_choice('position', position, POSITIONS)
        num_stages = kwargs.get('num_stages', 4)
        if stages is None:
            stages = (True, ) * num_stages
        if len(stages) != num_stages:
            raise ValueError(f'stages must have num_stages={num_stages} flags, got {stages!r}')
        self.attention_cfg = dict(type=self.plugin_type, **(attention_cfg or {}))
        self.attention_stages = tuple(bool(s) for s in stages)
        self.attention_position = position
        plugins = list(plugins or [])
        if position != 'after_stage':
            plugins.insert(0, dict(cfg=self.attention_cfg, position=position,
                                   stages=self.attention_stages))
        super().__init__(depth, plugins=plugins or None, **kwargs)

    def make_res_layer(self, **kwargs):
        layer = super().make_res_layer(**kwargs)
        stage = int(math.log2(kwargs['planes'] // self.base_channels))
        if self.attention_position == 'after_stage' and self.attention_stages[stage]:
            channels = kwargs['planes'] * self.block.expansion
            layer.add_module(str(len(layer)),
                             MODELS.build(dict(self.attention_cfg, in_channels=channels)))
        return layer


@MODELS.register_module()
class SEMResNet(PluginResNet):
    """ResNet with a Switchable Excitation Module after bn3 of every
    bottleneck, before the residual addition, as SE-ResNet places SE.

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        sem_cfg (dict): Arguments of :class:`mmsplitattn.SEM` (``reduction``...).
        **kwargs: Those of mmdet's/mmseg's ResNet.

    Shapes: x (B, 3, H, W) -> stage i (B, 256 * 2**i, H / 2**(i+2), W / 2**(i+2)).
    """

    plugin_type = 'mmsplitattn.SEM'

    def __init__(self, depth, sem_cfg=None, **kwargs):
        super().__init__(depth, attention_cfg=sem_cfg, position='after_conv3', **kwargs)


@MODELS.register_module()
class SPANetResNet(PluginResNet):
    """ResNet with salient-positions attention blocks (:class:`SPABlock`).

    By default one SPA block follows the last bottleneck of each of the two
    lowest stages (``spa_stages=(True, True, False, False)``,
    ``spa_position='after_stage'``), the way Non-local blocks are inserted:
    the paper finds the block helps most at low levels, where there are many
    positions to choose from. One block per stage costs +0.7 GFLOPs on
    ResNet-50 at 224x224 (4.1 -> 4.8); one in every bottleneck of those
    stages ('after_conv3') would cost +2.5.

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        spa_cfg (dict): Arguments of :class:`mmsplitattn.SPABlock` (``k``...).
        spa_stages (tuple[bool]): Stages that get SPA blocks.
        spa_position (str): 'after_stage', or 'after_conv1/2/3' of every block.
        **kwargs: Those of mmdet's/mmseg's ResNet.
    """

    plugin_type = 'mmsplitattn.SPABlock'

    def __init__(self, depth, spa_cfg=None, spa_stages=(True, True, False, False),
                 spa_position='after_stage', **kwargs):
        super().__init__(depth, attention_cfg=spa_cfg, stages=spa_stages,
                         position=spa_position, **kwargs)
