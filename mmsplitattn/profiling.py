"""Measurement helpers for the benchmark tools.

Saved for backward: the bytes of the distinct storages autograd keeps for
backward during a forward, as ``torch.autograd.graph.saved_tensors_hooks``
sees them (what activation offloading would move). Device independent: it
predicts the activation memory of training on any device.

Peak memory: on CPU the process's resident set size high-water mark (Linux
``VmHWM``), reset right before the measured work (``/proc/self/clear_refs``),
minus the resident size at that moment; so allocations made before (imports,
model building) never count. On CUDA it is the caching allocator's peak.
"""
import resource
from typing import Callable, Dict, Iterable

import torch


def _status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


class PeakMemory:
    """``with PeakMemory(device) as m: work()`` then ``m.peak_mb`` (MiB above
    the level at entry)."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak_mb = None

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')  # reset VmHWM to the current RSS
                self._base = _status_kib('VmRSS')
                self._proc = True
            except OSError:  # not Linux: ru_maxrss only grows, so less exact
                self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                self._proc = False
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            peak = (_status_kib('VmHWM') if self._proc else
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            self.peak_mb = max(0, peak - self._base) / 1024
        return False


def saved_storages(forward: Callable[[], object]) -> Dict[int, int]:
    """{storage address: bytes} of the distinct storages autograd saves for
    backward while ``forward()`` runs (views of one storage count once)."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()
    return storages


def saved_bytes(forward: Callable[[], object], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes saved for backward while ``forward()`` runs (``saved_storages``),
    but those of the tensors in ``exclude`` (e.g. the parameters: they exist
    anyway)."""
    storages = saved_storages(forward)
    for t in exclude:
        storages.pop(t.untyped_storage().data_ptr(), None)
    return sum(storages.values())
