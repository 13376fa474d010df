"""The package's registries, children of MMEngine's root ``MODELS``, ``HOOKS``,
``OPTIM_WRAPPERS`` and ``RUNNERS``.

Because it is a child of the root, a scoped name such as
``'mmsplitattn.ResNeSt'`` resolves from any default scope (``mmdet``,
``mmseg``, ``mmengine``), and ``locations`` imports the modules on first use.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='mmsplitattn',
    locations=['mmsplitattn.models'])

HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='mmsplitattn',
    locations=['mmsplitattn.engine'])

OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope='mmsplitattn',
    locations=['mmsplitattn.engine'])

RUNNERS = Registry(
    'runner',
    parent=MMENGINE_RUNNERS,
    scope='mmsplitattn',
    locations=['mmsplitattn.engine'])
