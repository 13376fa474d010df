from .backbones import ACmixResNet, ResNeSt, SEMResNet, SPANetResNet
from .layers import SEM, ACmix, SPABlock, SplitAttentionConv2d

__all__ = ['ACmix', 'ACmixResNet', 'ResNeSt', 'SEM', 'SEMResNet', 'SPABlock',
           'SPANetResNet', 'SplitAttentionConv2d']
