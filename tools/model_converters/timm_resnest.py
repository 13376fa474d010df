"""Convert timm's ResNeSt weights (resnest14d/26d/50d/101e/200e/269e) for
``mmsplitattn.ResNeSt``.

    python tools/model_converters/timm_resnest.py SRC DST

Build the backbone with the matching arguments: depth 14/26/50 with
``stem_channels=64``, 101/200/269 with ``stem_channels=128``.
"""
from mmsplitattn.converters import converter_main

if __name__ == '__main__':
    converter_main('timm', __doc__.split('\n\n')[0])
