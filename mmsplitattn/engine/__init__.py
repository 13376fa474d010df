from .checkpoint_fit_hook import CheckpointFitHook
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .data_errors import DataError, NamedErrorPipeline, wrap_pipelines
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['CheckpointFitHook', 'CPUAmpOptimWrapper', 'DataError', 'NamedErrorPipeline',
           'NonFiniteCheckHook', 'RNGStateHook', 'SafeCheckpointHook',
           'wrap_pipelines']
