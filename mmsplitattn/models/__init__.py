from .backbones import ResNeSt, SEMResNet, SPANetResNet
from .layers import SEM, SPABlock, SplitAttentionConv2d

__all__ = ['ResNeSt', 'SEMResNet', 'SPANetResNet', 'SEM', 'SPABlock', 'SplitAttentionConv2d']
