from .acmix import ACmix
from .sem import SEM
from .spa_block import SPABlock
from .split_attention import SplitAttentionConv2d

__all__ = ['ACmix', 'SEM', 'SPABlock', 'SplitAttentionConv2d']
