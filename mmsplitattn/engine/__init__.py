"""What the package adds to MMEngine's training and testing, as registered
components (:class:`SafeRunner`, its hooks, the ``atomic_local`` file backend,
the CPU AMP optimizer wrapper); docs/training.md."""
from .checkpoint import (AtomicLocalBackend, check_checkpoint, find_resumable_checkpoint,
                         write_atomically)
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .data import DataError, NamedErrorPipeline, check_dataset, wrap_pipelines
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook
from .runner import SAFETY_DEFAULTS, DistributedTimeoutError, SafeRunner
from .utils import build_model, load_config, task_of, unwrap_model

__all__ = ['AtomicLocalBackend', 'CPUAmpOptimWrapper', 'DataError', 'DistributedTimeoutError',
           'NamedErrorPipeline', 'NonFiniteCheckHook', 'RNGStateHook', 'SAFETY_DEFAULTS',
           'SafeRunner', 'build_model', 'check_checkpoint', 'check_dataset',
           'find_resumable_checkpoint', 'load_config', 'task_of', 'unwrap_model',
           'wrap_pipelines', 'write_atomically']
