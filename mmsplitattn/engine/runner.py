"""The Runner that every config of the package selects (``runner_type``)."""
import json
import math
import os
import signal
import threading

import torch
from mmengine.dist import broadcast_object_list, get_rank, is_distributed, is_main_process
from mmengine.runner import BaseLoop, Runner, find_latest_checkpoint

from mmsplitattn.registry import RUNNERS

from .checkpoint import check_checkpoint, find_resumable_checkpoint, remove_stale_temp_files
from .data import (SEE_TOOL, DataError, DatasetReport, check_dataset, load_problem,
                   wrap_pipelines)
from .dist import init_cpu_dist, is_collective_timeout
from .utils import unwrap_model

# What mmengine.runner.checkpoint.load_state_dict(strict=True) raises with.
_MISMATCH = 'The model and loaded state dict do not match exactly'
SAFETY_DEFAULTS = dict(data_check=True, read_headers=False, allow_partial_load=False,
                       non_finite_check=True)


class DistributedTimeoutError(RuntimeError):
    """A collective operation did not complete within ``env_cfg.dist_cfg.timeout``."""


class _Terminated(Exception):
    """SIGTERM arrived (slurm's time limit, ``scancel``, ``kill``)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


@RUNNERS.register_module()
class SafeRunner(Runner):
    """MMEngine's Runner with the protections docs/training.md lists, set by the
    config's ``safety_cfg`` (defaults :data:`SAFETY_DEFAULTS`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self._load_from:  # a mistyped or truncated file named before any data loads
            check_checkpoint(self._load_from, crc=False)

    @property
    def safety(self) -> dict:
        return dict(SAFETY_DEFAULTS, **(self.cfg.get('safety_cfg') or {}))

    def setup_env(self, env_cfg: dict) -> None:
        self._dist_timeout = env_cfg.get('dist_cfg', {}).get('timeout')
        if self.distributed and not is_distributed() and not torch.cuda.is_available():
            env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
            init_cpu_dist(self.launcher, self._dist_timeout)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg, model):
        if model_wrapper_cfg is None and self.distributed and not torch.cuda.is_available():
            model_wrapper_cfg = dict(
                type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters', False))
        return super().wrap_model(model_wrapper_cfg, model)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        custom = list(custom_hooks or [])
        kinds = [h.get('type') if isinstance(h, dict) else type(h) for h in custom]
        present = {getattr(k, '__name__', str(k)).split('.')[-1] for k in kinds}
        wanted = ['RNGStateHook'] + ['NonFiniteCheckHook'] * bool(self.safety['non_finite_check'])
        custom += [dict(type=f'mmsplitattn.{n}') for n in wanted if n not in present]
        default_hooks = dict(default_hooks or {})
        ckpt = default_hooks.get('checkpoint', dict(type='CheckpointHook', interval=1))
        if isinstance(ckpt, dict) and not (ckpt.get('backend_args') or ckpt.get(
                'file_client_args') or '://' in str(ckpt.get('out_dir'))):
            default_hooks['checkpoint'] = dict(ckpt, backend_args=dict(backend='atomic_local'))
        super().register_hooks(default_hooks, custom)

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        """Runner's, with pipelines that name the files of a failing sample."""
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        wrap_pipelines(loader.dataset)
        return loader

    def build_train_loop(self, loop):
        return self._checked('train_dataloader', super().build_train_loop, loop)

    def build_val_loop(self, loop):
        return self._checked('val_dataloader', super().build_val_loop, loop)

    def build_test_loop(self, loop):
        return self._checked('test_dataloader', super().build_test_loop, loop)

    def _checked(self, loader: str, build, loop):
        """``build(loop)``, the dataset it loaded checked on rank 0; a ValueError on
        every rank if it would stop or corrupt the run."""
        try:
            built = build(loop)
        except (OSError, json.JSONDecodeError) as e:  # files missing, annotations broken
            problem = load_problem(loader, e, dataset_cfg=(self.cfg.get(loader) or {}).get(
                'dataset'))
            raise DataError(f'{loader}: the dataset does not load: {problem}. '
                            + SEE_TOOL.replace('CONFIG', self.cfg.filename or 'CONFIG')) from None
        dataset = getattr(getattr(built, 'dataloader', None), 'dataset', None)
        if built is loop or dataset is None or not self.safety['data_check']:
            return built
        verdict = [None]
        if is_main_process():
            try:  # every rank waits for a verdict: an error is one too
                report = DatasetReport()
                check_dataset(dataset, loader, report, self.safety['read_headers'])
                text = report.format(self.cfg.filename or 'the config')
                verdict = [None if report.ok else text]
                if report.ok and report.warnings:
                    self.logger.warning(text)
            except Exception as e:  # noqa: BLE001 - re-raised on every rank below
                verdict = [f'{loader}: the dataset check failed: {type(e).__name__}: {e} '
                           '(safety_cfg.data_check=False skips it)']
        broadcast_object_list(verdict)
        if verdict[0] is not None:
            raise ValueError(verdict[0])
        return built

    def build_evaluator(self, evaluator):
        try:
            return super().build_evaluator(evaluator)
        except (OSError, json.JSONDecodeError) as e:  # e.g. CocoMetric's ann_file
            raise DataError(f'an evaluator does not build: {type(e).__name__}: {e} (working '
                            f'directory {os.getcwd()!r}): point its ann_file at the annotations, '
                            'e.g. --cfg-options val_evaluator.ann_file=... '
                            'test_evaluator.ann_file=...') from None

    def train(self):
        if is_main_process():
            for path in remove_stale_temp_files(self.work_dir):
                self.logger.warning(f'removed {path}, left by an interrupted save')
        return self._guarded(super().train)

    def test(self) -> dict:
        return self._guarded(super().test)

    def _guarded(self, run):
        """``run()``; interrupts become SystemExit(130/143) with one line, a
        timed-out collective a :class:`DistributedTimeoutError`."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
        try:
            return run()
        except (KeyboardInterrupt, _Terminated) as e:
            sigint = isinstance(e, KeyboardInterrupt)
            last = find_latest_checkpoint(self.work_dir)  # the pointer follows complete saves
            loop = self._train_loop  # self.epoch would build a train loop not built yet
            where = f' at epoch {loop.epoch}, iteration {loop.iter}' \
                if isinstance(loop, BaseLoop) else ''
            self.logger.error(
                f'{"interrupted (Ctrl-C)" if sigint else "terminated (SIGTERM)"}{where}; ' + (
                    f'the last checkpoint written is {last}: continue with --resume'
                    if last else 'no checkpoint was written'))
            raise SystemExit(130 if sigint else 143) from None
        except Exception as e:
            if not is_collective_timeout(e):
                raise
            limit = f'{self._dist_timeout:g} s (env_cfg.dist_cfg.timeout)' \
                if self._dist_timeout else "torch's default"
            raise DistributedTimeoutError(
                f'rank {get_rank()}: a collective operation did not complete within {limit}: '
                f'another rank is stopped, hung or gone ({e})') from e
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    def load_or_resume(self) -> None:
        if self._resume and self._load_from is None and not self._has_loaded:
            choice = [find_resumable_checkpoint(self.work_dir) if is_main_process() else None]
            broadcast_object_list(choice)
            path, bad = choice[0]
            for bad_path, reason in bad:
                self.logger.warning(f'--resume: skipping {bad_path}: {reason}')
            if path is None and bad:
                raise RuntimeError(f'--resume: no loadable checkpoint in {self.work_dir!r}; '
                                   f'every one is corrupt: {", ".join(p for p, _ in bad)}')
            if path is None:
                self.logger.warning(f'--resume: no checkpoint in {self.work_dir!r}, training '
                                    'starts from scratch (is it the run\'s work dir?)')
                self._resume = False
            elif bad:
                self.logger.warning(f'--resume: resuming from {path}, the newest good checkpoint')
            self._load_from = path
        super().load_or_resume()
        loop = self._train_loop
        if self._resume and isinstance(loop, BaseLoop) and self.iter >= loop.max_iters:
            self.logger.warning(
                f'--resume: {self._load_from} is the end of the schedule (iteration '
                f'{self.iter} of {loop.max_iters}): the run is finished, nothing is trained. '
                'Raise train_cfg.max_epochs (or max_iters) to train on.')

    def load_checkpoint(self, filename: str, map_location='cpu', strict: bool = False,
                        revise_keys=[(r'^module.', '')]):  # noqa: B006 - MMEngine's default
        strict = strict or not self.safety['allow_partial_load']
        try:
            return super().load_checkpoint(filename, map_location, strict, revise_keys)
        except RuntimeError as e:
            if not str(e).startswith(_MISMATCH):
                raise
            raise ValueError(
                f'checkpoint {filename!r} does not fit the model '
                f'({type(unwrap_model(self.model)).__name__}): {e}\nIs it a checkpoint of this '
                'config? To load only the tensors that match (e.g. fine-tuning from another '
                'head), set safety_cfg.allow_partial_load=True (tools: --allow-partial-load).'
            ) from None

    def scale_lr(self, optim_wrapper, auto_scale_lr=None) -> None:
        if auto_scale_lr and auto_scale_lr.get('enable', False):
            loader = self.train_dataloader
            batch = loader.batch_size or loader.batch_sampler.batch_size  # mmdet: a sampler's
            per_rank = math.ceil(len(loader.dataset) / self.world_size)
            if batch > per_rank:
                self.logger.warning(
                    f'auto_scale_lr: batch_size={batch}, but each of the {self.world_size} '
                    f'processes has {per_rank} images: scaling by the real batch of '
                    f'{per_rank * self.world_size} images')
                auto_scale_lr = dict(auto_scale_lr, base_batch_size=auto_scale_lr[
                    'base_batch_size'] * batch / per_rank)
        super().scale_lr(optim_wrapper, auto_scale_lr)
