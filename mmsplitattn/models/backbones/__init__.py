from .resnest import ResNeSt

__all__ = ['ResNeSt']
