"""Checkpoint checks for the tools: readable, complete, and fitting the model."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

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


_PERIODIC = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def find_resumable_checkpoint(work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest checkpoint of ``work_dir`` that passes :func:`check_checkpoint`,
    and the (path, reason) of every newer one that did not.

    Candidates, newest first: the file ``last_checkpoint`` points to, then
    ``epoch_*.pth`` / ``iter_*.pth`` by decreasing number. (None, [...]) if
    none is good or there is none.
    """
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last:
            candidates.append(last)
    periodic = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        match = _PERIODIC.match(name)
        if match:
            periodic.append((int(match.group(2)), osp.join(work_dir, name)))
    candidates += [path for _, path in sorted(periodic, reverse=True)]
    bad, seen = [], set()
    for path in candidates:
        if osp.abspath(path) in seen:
            continue
        seen.add(osp.abspath(path))
        try:
            check_checkpoint(path)
        except (RuntimeError, FileNotFoundError) as e:
            bad.append((path, str(e)))
            continue
        return path, bad
    return None, bad
