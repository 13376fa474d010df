"""Key mapping from released ResNeSt weights to :class:`mmsplitattn.ResNeSt`.

timm's ``resnest14d/26d/50d/101e/200e/269e`` and the official
zhanghang1989/ResNeSt models share one layout, which differs from mmdet's
(ours) only in the deep stem and the classifier:

=====================  ==============
timm / official        mmsplitattn
=====================  ==============
conv1.{0,1,3,4,6}.*    stem.{0,1,3,4,6}.*
bn1.*                  stem.7.*
layerN.M.*             layerN.M.* (conv2.{conv,bn0,fc1,bn1,fc2}, downsample.{1,2})
fc.*                   dropped
=====================  ==============
"""
import os
import os.path as osp
import re
from collections import OrderedDict

import torch

from mmsplitattn.engine import write_atomically

_STEM = re.compile(r'^conv1\.(0|1|3|4|6)\.(.+)$')
_LAYER = re.compile(r'^layer[1-4]\.\d+\.')


def load_state_dict(path):
    """A state dict from a checkpoint, a bare state dict or a .safetensors file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'source checkpoint {path!r} does not exist')
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            obj = load_file(path)
        else:
            obj = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(f'cannot read {path!r} as a checkpoint '
                           f'({type(e).__name__}: {e})') from None
    for key in ('state_dict', 'model', 'state_dict_ema'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f'{path!r} holds no state dict of tensors')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                       for k, v in obj.items())


def convert_resnest(state_dict, log=print):
    """Map a timm/official ResNeSt state dict to mmsplitattn's key names.

    The classifier ``fc.*`` is dropped (with a message); any other key that
    is not part of the layout raises ValueError.
    """
    out, dropped, unknown = OrderedDict(), [], []
    for key, value in state_dict.items():
        m = _STEM.match(key)
        if m:
            out[f'stem.{m.group(1)}.{m.group(2)}'] = value
        elif key.startswith('bn1.'):
            out['stem.7.' + key[4:]] = value
        elif _LAYER.match(key):
            out[key] = value
        elif key.startswith('fc.'):
            dropped.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise ValueError('keys outside the timm/official ResNeSt layout: '
                         + ', '.join(unknown[:10]) + (' ...' if len(unknown) > 10 else ''))
    if dropped:
        log(f'dropped the classifier head: {", ".join(dropped)}')
    return out


def save_checkpoint(state_dict, dst, meta):
    """Write ``{'meta', 'state_dict'}`` to ``dst`` atomically."""
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    write_atomically(dst, lambda tmp: torch.save(dict(meta=meta, state_dict=state_dict), tmp))


def convert_file(src, dst, source_name, log=print):
    """Convert the checkpoint ``src`` to ``dst``; returns the new state dict."""
    state_dict = convert_resnest(load_state_dict(src), log=log)
    save_checkpoint(state_dict, dst, meta=dict(converted_from=source_name, src=osp.basename(src)))
    log(f'wrote {len(state_dict)} tensors to {dst}')
    return state_dict


def converter_main(source_name, description, argv=None):
    """The command line both converter scripts share: ``SRC DST``."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='source checkpoint / state dict (.pth, .pth.tar, .bin, .safetensors)')
    parser.add_argument('dst', help='output checkpoint for init_cfg=dict(type="Pretrained", checkpoint=DST)')
    args = parser.parse_args(argv)
    convert_file(args.src, args.dst, source_name)
