"""CPU memory allocator settings.

glibc returns freed memory to the system (large blocks are mappings of their
own, the heap's top is trimmed), so a training step that frees and
reallocates its activations pays page faults to get the memory back: on this
project's 2-core VM 10-30 thousand per ResNeSt-50 backbone step (~0.2 s of
sys time in the worst steps) and over a million per Mask R-CNN step at
512x768. How many depends on what ran before.
"""
import ctypes

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory():
    """Make glibc keep freed memory in the process: no per-tensor mappings
    (up to 1 GiB) and no heap trimming (up to 2 GiB), so once warm a step
    reuses pages instead of faulting them in; the resident size stays at its
    peak, as with CUDA's caching allocator. The same as starting with
    ``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483647``.
    Returns False (and changes nothing) where the C library has no
    ``mallopt`` or refuses the values."""
    mallopt = getattr(ctypes.CDLL(None), 'mallopt', None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 2**30) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
