from .checkpoint_fit_hook import CheckpointFitHook
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .data_error_hook import DataError, DataErrorHook
from .non_finite_check_hook import NonFiniteCheckHook
from .rng_state_hook import RNGStateHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['CheckpointFitHook', 'CPUAmpOptimWrapper', 'DataError', 'DataErrorHook',
           'NonFiniteCheckHook', 'RNGStateHook', 'SafeCheckpointHook']
