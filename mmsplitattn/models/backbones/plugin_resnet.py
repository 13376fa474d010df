"""ResNets with an attention module inserted into every chosen bottleneck:
SEM-ResNet and SPANet-ResNet. Both are the shared ResNet skeleton plus one
mmdet-style plugin, so their parameter names are torchvision's/mmdet's plus
``layerN.M.sem.*`` / ``layerN.M.spa_block.*``, and ImageNet ResNet weights
load into everything but the attention modules."""
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
POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


class PluginResNet(ResNetBase):
    """ResNet-14/26/50/101/152 with ``plugin_type`` at ``position`` of the blocks of
    the stages flagged in ``stages``; other ``plugins`` come after it.

    ``deep_stem=True`` gives the V1c stem, ``avg_down=True`` with it the D
    variant; ``strides``/``dilations``/``contract_dilation`` the D8 layout.
    """

    arch_settings = RESNET_ARCH
    plugin_type = None

    def __init__(self, depth, attention_cfg=None, stages=None, position='after_conv3',
                 plugins=None, **kwargs):
        check_choice('position', position, POSITIONS)
        num_stages = kwargs.get('num_stages', 4)
        if stages is not None and len(stages) != num_stages:
            raise ValueError(f'stages must have num_stages={num_stages} flags, got {stages!r}')
        attention = dict(cfg=dict(type=self.plugin_type, **(attention_cfg or {})),
                         position=position)
        if stages is not None:
            attention['stages'] = tuple(bool(s) for s in stages)
        super().__init__(depth, plugins=[attention, *(plugins or [])], **kwargs)


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

    By default a SPA block follows bn3 of every bottleneck of the two lowest
    stages (``spa_stages=(True, True, False, False)``): the paper reports the
    block helps most at low levels, where there are many positions to choose
    from, and its cost there is small (the affinity is C' x C' whatever the
    map size).

    Args:
        depth (int): 14, 26, 50, 101 or 152.
        spa_cfg (dict): Arguments of :class:`mmsplitattn.SPABlock` (``k``...).
        spa_stages (tuple[bool]): Stages that get SPA blocks.
        spa_position (str): 'after_conv1', 'after_conv2' or 'after_conv3'.
        **kwargs: Those of mmdet's/mmseg's ResNet.
    """

    plugin_type = 'mmsplitattn.SPABlock'

    def __init__(self, depth, spa_cfg=None, spa_stages=(True, True, False, False),
                 spa_position='after_conv3', **kwargs):
        super().__init__(depth, attention_cfg=spa_cfg, stages=spa_stages,
                         position=spa_position, **kwargs)
