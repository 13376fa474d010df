"""Checkpoint checks for the tools: readable, complete, and fitting the model."""
import os.path as osp
import zipfile

import torch


def check_checkpoint(path: str) -> None:
    """Raise a clear error if ``path`` is missing or not a readable checkpoint.

    URLs and ``open-mmlab://`` style names are left to MMEngine.
    """
    if '://' in path:
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        if zipfile.is_zipfile(path):  # torch >= 1.6 format: check every CRC
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise ValueError(f'member {bad!r} fails its CRC check')
        else:  # legacy pickle format, or a truncated zip
            torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(
            f'checkpoint {path!r} is corrupt or not a PyTorch checkpoint '
            f'({type(e).__name__}: {e}); it may be truncated by an interrupted '
            'copy or save') from None
