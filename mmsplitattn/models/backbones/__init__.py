from .acmix_resnet import ACmixResNet
from .plugin_resnet import SEMResNet, SPANetResNet
from .resnest import ResNeSt

__all__ = ['ACmixResNet', 'ResNeSt', 'SEMResNet', 'SPANetResNet']
