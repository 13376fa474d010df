"""Let ``torch.load(..., weights_only=True)``, torch's default since 2.6, read
the checkpoints MMEngine's Runner writes.

Besides tensors and plain containers, a Runner checkpoint of mmengine 0.10 holds
the message hub's :class:`~mmengine.logging.HistoryBuffer` objects, the numpy
arrays and scalars inside them and the numpy generator state of this package's
``RNGStateHook``; each history buffer pickles its statistics methods as
``getattr(HistoryBuffer, 'mean')`` (and 'min', 'max', 'current'). Importing
mmsplitattn allow-lists exactly these (``torch.serialization.add_safe_globals``),
the ``getattr`` as a version that resolves nothing else, so mmdet's and mmseg's
tools and APIs (``DetInferencer``, ``init_detector``, ``MMSegInferencer``,
``init_model``; the config's ``custom_imports`` imports this package) load such a
checkpoint with no environment variable, while the unpickler keeps refusing
every other class and function.
"""
import pickle
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


# HistoryBuffer's own statistics (a statistic a user registers is refused)
BUILTIN_STATISTICS = ('current', 'max', 'mean', 'min')


def history_buffer_statistic(owner: type, name: str):
    """``getattr`` as a weights_only load sees it: only ``HistoryBuffer``'s
    statistics methods."""
    if owner is HistoryBuffer and name in BUILTIN_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load: getattr({owner!r}, {name!r}) is not allowed; mmsplitattn '
        f'allows getattr only for the HistoryBuffer statistics {list(BUILTIN_STATISTICS)}')


def mmengine_checkpoint_globals() -> List[object]:
    """What MMEngine checkpoints pickle besides tensors, for ``add_safe_globals``."""
    return [
        HistoryBuffer, (history_buffer_statistic, 'builtins.getattr'),
        # numpy arrays and scalars: history buffers, numpy's generator state; a
        # dtype is rebuilt as an instance of its class (numpy.dtypes.Float64DType)
        np.core.multiarray._reconstruct, np.core.multiarray.scalar, np.ndarray, np.dtype,
        *sorted({type(np.dtype(code)) for code in
                 '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']},
                key=lambda cls: cls.__name__),
    ]


def allow_mmengine_checkpoints() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``weights_only`` loads."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
