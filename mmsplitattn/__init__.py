"""mmsplitattn: attention backbones (ResNeSt, SEM, ACmix, SPANet) for OpenMMLab 2.x.

Importing the package registers every module in :data:`mmsplitattn.registry.MODELS`
(scope ``mmsplitattn``); configs refer to them as ``type='mmsplitattn.ResNeSt'``
with ``custom_imports=dict(imports=['mmsplitattn'])``. It also lets torch's default
``weights_only=True`` load the checkpoints MMEngine writes
(:mod:`mmsplitattn.checkpoint_safety`).
"""
from .version import __version__
from . import engine, models  # noqa: F401  (registers the modules)
from .checkpoint_safety import allow_mmengine_checkpoints

allow_mmengine_checkpoints()

__all__ = ['__version__']
