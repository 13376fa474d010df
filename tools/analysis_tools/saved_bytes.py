"""Saved for backward: the bytes autograd keeps from one training forward of
each backbone, against mmdet's ResNet-50 and ResNeSt-50.

    python tools/analysis_tools/saved_bytes.py [--models NAME ...]
        [--size 512 864] [--batch 2] [--json FILE]

The bytes of the distinct storages ``torch.autograd.graph.saved_tensors_hooks``
sees (``mmsplitattn.profiling.saved_storages``), for one image: the
activations (the input included), and those plus the parameters autograd
saves (they exist anyway; issue 18's figures count them). All backbones in
train mode with their BNs training, measured on 2 images (the split
attention's BN needs 2+). Device independent: it predicts the activation memory of training
on a GPU. ``acmix-resnet50-before`` is ACmix-ResNet-50 with ACmix as it was
before the lean formulation (read from git history by
``benchmark_acmix.before_acmix``), ``acmix-resnet50-unfold`` with the unfold
formulation of the official code.
"""
import argparse
import functools
import json
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_acmix import BEFORE, before_acmix  # noqa: E402

from mmsplitattn.profiling import saved_storages  # noqa: E402


def _mmdet(cls_name, **kw):
    # mmdet's ResNets default to norm_eval=True (BN frozen in train mode); ours
    # train their BNs, so the peers are measured with norm_eval=False
    import mmdet.models.backbones
    return getattr(mmdet.models.backbones, cls_name)(depth=50, norm_eval=False, **kw)


def _ours(cls_name):
    import mmsplitattn.models
    return getattr(mmsplitattn.models, cls_name)(50)


def _acmix_with(formulation):
    """ACmix-ResNet-50 whose ACmix modules compute with ``formulation``:
    'before' (the class of commit BEFORE) or 'unfold'."""
    from mmsplitattn.models import ACmix
    from mmsplitattn.models.layers.acmix_unfold import acmix_unfold_forward
    model = _ours('ACmixResNet')
    for name, m in list(model.named_modules()):
        if isinstance(m, ACmix):
            if formulation == 'unfold':
                m.forward = functools.partial(acmix_unfold_forward, m)
            else:
                parent, child = model.get_submodule(name.rsplit('.', 1)[0]), name.rsplit('.')[-1]
                setattr(parent, child, before_acmix(BEFORE)(
                    m.in_channels, m.out_channels, stride=m.stride, dilation=m.dilation))
    return model


MODELS = {
    'mmdet-resnet50': lambda: _mmdet('ResNet'),
    'mmdet-resnest50': lambda: _mmdet('ResNeSt'),
    'resnest50': lambda: _ours('ResNeSt'),
    'sem-resnet50': lambda: _ours('SEMResNet'),
    'spanet-resnet50': lambda: _ours('SPANetResNet'),
    'acmix-resnet50': lambda: _ours('ACmixResNet'),
    'acmix-resnet50-before': lambda: _acmix_with('before'),
    'acmix-resnet50-unfold': lambda: _acmix_with('unfold'),
}
BASELINES = ('mmdet-resnet50', 'mmdet-resnest50')


def measure(name, size=(512, 864), batch=2):
    """(activations, with parameters) in MiB for one image, saved for backward
    by a training forward of backbone ``name`` on ``batch`` images (the split
    attention trains its BN on 2+): the activations (input included) per
    image, and those plus the parameters autograd saves (as issue 18
    counted, for one image)."""
    torch.manual_seed(0)
    model = MODELS[name]()
    model.train()  # mmdet's train() returns None
    x = torch.randn(batch, 3, *size)
    storages = saved_storages(lambda: model(x))
    parameters = sum(storages.pop(p.untyped_storage().data_ptr(), 0)
                     for p in model.parameters())
    activations = sum(storages.values()) / batch / 2**20
    return activations, activations + parameters / 2**20


def main(argv=None):
    """Returns {model: (activations, with parameters)}, MiB for one image."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS),
                        help='ratios are given to those of ' + ' and '.join(BASELINES) +
                        ' that are among them')
    parser.add_argument('--size', type=int, nargs=2, default=[512, 864], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args(argv)
    result = {}
    for name in args.models:
        print(f'{name} ...', flush=True)
        result[name] = measure(name, tuple(args.size), args.batch)
    baselines = [b for b in BASELINES if b in result]
    print(f'\nSaved for backward by one training forward, MiB for one image of '
          f'{args.size[0]}x{args.size[1]} (measured on {args.batch}); act = activations, '
          f'all = with the parameters, vs ' + ', '.join(baselines))
    columns = [(f'{kind}/{b.split("-")[1]}', i, b)
               for i, kind in enumerate(('act', 'all')) for b in baselines]
    print(f'{"backbone":<24} {"act":>6} {"all":>6} ' + ' '.join(f'{c:>13}' for c, _, _ in columns))
    for name, values in result.items():
        print(f'{name:<24} {values[0]:>6.0f} {values[1]:>6.0f} ' +
              ' '.join(f'{values[i] / result[b][i]:>12.2f}x' for _, i, b in columns))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), saved_mib=result), f, indent=2)
    return result


if __name__ == '__main__':
    main()
