from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .rng_state_hook import RNGStateHook

__all__ = ['CPUAmpOptimWrapper', 'RNGStateHook']
