"""Checkpoint files: written atomically, verified, found for ``--resume``."""
import errno
import os
import os.path as osp
import re
import zipfile
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.runner import find_latest_checkpoint

_TMP = re.compile(r'^\..+\.tmp(\d+)$')


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """``write(tmp_path)``, fsync, rename to ``path``; on any error (an interrupt
    too) the temporary file is removed, and an OSError is re-raised naming ``path``."""
    tmp = osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp{os.getpid()}')
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.isfile(tmp):
            os.remove(tmp)
        if not isinstance(e, OSError):
            raise
        hint = {errno.ENOSPC: ' (the disk is full)', errno.EFBIG: ' (a file size limit)',
                errno.EDQUOT: ' (the disk quota)', errno.EROFS: ' (a read-only file system)',
                errno.EACCES: ' (no write permission)'}.get(e.errno, '')
        raise OSError(e.errno, f'cannot write {path!r}: {e.strerror}{hint}; nothing was '
                      'written there and the previous files are untouched') from e


def remove_stale_temp_files(directory: str) -> List[str]:
    """Remove what :func:`write_atomically` of a dead process left in ``directory``."""
    removed = []
    names = os.listdir(directory) if osp.isdir(directory) else []
    for match in filter(None, map(_TMP.match, names)):
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            removed.append(osp.join(directory, match.group(0)))
            os.remove(removed[-1])
        except PermissionError:  # alive, another user's
            pass
    return removed


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend (``backend_args=dict(backend='atomic_local')``)
    whose ``put`` is :func:`write_atomically` and whose ``remove`` (the
    CheckpointHook's rotation, before the save) waits for the next complete
    ``put`` into that directory: a failed save never costs an older file."""

    _pending: Dict[str, List[str]] = {}  # directory -> files to remove after its next put

    def put(self, obj: bytes, filepath) -> None:
        path = osp.abspath(filepath)

        def write(tmp):
            with open(tmp, 'wb') as f:
                f.write(obj)

        write_atomically(path, write)
        for old in self._pending.pop(osp.dirname(path), []):
            if old != path and osp.isfile(old):
                os.remove(old)

    def remove(self, filepath) -> None:
        path = osp.abspath(filepath)
        self._pending.setdefault(osp.dirname(path), []).append(path)


def check_checkpoint(path: str, crc: bool = True) -> None:
    """Raise FileNotFoundError or RuntimeError naming a missing or incomplete
    checkpoint: the zip directory is read (``crc``: every member's CRC too).
    URLs and legacy pickle files are left to torch."""
    if '://' in path:
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist')
    try:
        with open(path, 'rb') as f:
            if f.read(1) == b'\x80':  # torch < 1.6 pickle format
                return
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip() if crc else None
        if bad is not None:
            raise ValueError(f'member {bad!r} fails its CRC check')
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise RuntimeError(
            f'checkpoint {path!r} is corrupt or not a PyTorch checkpoint '
            f'({type(e).__name__}: {e}); it may be truncated by an interrupted '
            'copy or save') from None


def find_resumable_checkpoint(work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest good checkpoint of ``work_dir`` (or None) and (path, reason) of
    each newer bad one. Candidates: what MMEngine's ``find_latest_checkpoint``
    names (the work dir's own file of that name, if a copied dir has it), then
    ``*_<N>.pth`` by decreasing N (not ``best_*``)."""
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    numbered = sorted(((int(m.group(1)), name) for name in names if not name.startswith('best_')
                       for m in [re.search(r'(\d+)\.pth$', name)] if m), reverse=True)
    candidates = [osp.join(work_dir, name) for _, name in numbered]
    last = find_latest_checkpoint(work_dir)
    if last:
        own = osp.join(work_dir, osp.basename(last))
        candidates.insert(0, own if osp.exists(own) else last)
    bad = []
    for path in dict.fromkeys(candidates):  # in order, once each
        try:
            check_checkpoint(path)
            return path, bad
        except (RuntimeError, FileNotFoundError) as e:
            bad.append((path, str(e)))
    return None, bad


def checkpoint_due(runner, epoch_end: bool) -> bool:
    """Whether the runner's CheckpointHook saves after this iteration or epoch."""
    hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
    if hook is None or hook.by_epoch != epoch_end:
        return False
    if epoch_end:
        return (hook.every_n_epochs(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_epoch(runner)))
    return (hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
            or (hook.save_last and hook.is_last_train_iter(runner)))
