from .backbones import ResNeSt
from .layers import SplitAttentionConv2d

__all__ = ['ResNeSt', 'SplitAttentionConv2d']
