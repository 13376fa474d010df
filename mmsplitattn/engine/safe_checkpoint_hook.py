"""MMEngine's CheckpointHook, made safe against interruptions, full disks and
divergence: atomic writes, rotation after the new file is complete, no
non-finite checkpoint."""
import errno
import os
import os.path as osp
from collections import deque

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmsplitattn.registry import HOOKS

from .non_finite_check_hook import non_finite_tensors


def _flatten(prefix, obj):
    """(name, value) pairs of the tensors nested in dicts/lists of ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(f'{prefix}.{k}' if prefix else str(k), v)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _flatten(f'{prefix}.{i}', v)
    else:
        yield prefix, obj


def write_atomically(path: str, write) -> None:
    """Call ``write(tmp_path)``, flush it to disk and rename it to ``path``; on
    any error remove the temporary file and raise an OSError naming ``path``."""
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
        hint = ''
        if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            hint = ' (the disk or a file size limit is full: free space or use another work_dir)'
        elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = ' (the directory is not writable: use another work_dir)'
        raise OSError(e.errno, f'cannot write {path!r}: {e.strerror}{hint}; nothing was '
                      'written there and the previous files are untouched') from e


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose periodic checkpoints and
    ``last_checkpoint`` pointer are written to a temporary name and renamed,
    so an interruption or a full disk never leaves a partial file under a
    checkpoint's name; the oldest checkpoint is removed only after the new one
    is complete. Any checkpoint whose weights or optimizer state hold a NaN or
    an infinity is refused with ``FloatingPointError`` before it is written.

    ``tools/train.py`` puts it in place of ``default_hooks.checkpoint``.
    Remote ``out_dir`` backends, MMEngine's FlexibleRunner and ``save_best``
    checkpoints are saved as MMEngine does (the non-finite check applies).
    """

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = non_finite_tensors(_flatten('', {k: checkpoint.get(k) for k in
                                               ('state_dict', 'optimizer')}))
        if bad:
            raise FloatingPointError(
                f'refusing to write a checkpoint at iteration {runner.iter}: {len(bad)} '
                f'tensors hold NaN or inf (first: {", ".join(bad[:3])}); the earlier '
                'checkpoints are kept')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # FlexibleRunner (DeepSpeed/FSDP) saves collectively from every rank
        if not isinstance(self.file_backend, LocalBackend) or not isinstance(runner, Runner):
            return super()._save_checkpoint_with_step(runner, step, meta)
        filename = self.filename_tmpl.format(step)
        path = osp.join(self.out_dir, filename)
        dropped = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            ids = list(self.keep_ckpt_ids) + [step]
            dropped, kept = ids[:-self.max_keep_ckpts], ids[-self.max_keep_ckpts:]
            # recorded in the checkpoint itself, as MMEngine's hook does
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        self.last_ckpt = path
        runner.message_hub.update_info('last_ckpt', path)

        def save(tmp):
            runner.save_checkpoint(
                self.out_dir, osp.basename(tmp), self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)

        if not is_main_process():  # only rank 0 writes (Runner.save_checkpoint is master_only)
            return
        write_atomically(path, save)

        def point(tmp):
            with open(tmp, 'w') as f:
                f.write(path)

        write_atomically(osp.join(runner.work_dir, 'last_checkpoint'), point)
        for old in dropped:
            old_path = osp.join(self.out_dir, self.filename_tmpl.format(old))
            if osp.isfile(old_path):
                os.remove(old_path)
