"""Convert the official zhanghang1989/ResNeSt weights (resnest50/101/200/269)
for ``mmsplitattn.ResNeSt``.

    python tools/model_converters/official_resnest.py SRC DST

Build the backbone with ``stem_channels=64`` for ResNeSt-50 and 128 for the
deeper ones (the official ``stem_width`` is half of it).
"""
from mmsplitattn.converters import converter_main

if __name__ == '__main__':
    converter_main('official', __doc__.split('\n\n')[0])
