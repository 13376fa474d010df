from .plugin_resnet import SEMResNet, SPANetResNet
from .resnest import ResNeSt

__all__ = ['ResNeSt', 'SEMResNet', 'SPANetResNet']
