"""Stop training when it diverges, before anything of the bad iteration is saved."""
import math
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook, LoggerHook

from mmsplitattn.registry import HOOKS

from .checkpoint import checkpoint_due
from .utils import unwrap_model


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Raise ``FloatingPointError`` on every rank when training diverges, before
    the CheckpointHook sees the iteration: the logged loss terms and gradient
    norm every iteration, the weights' total norm at each logging interval and
    before every checkpoint (docs/training.md, "non-finite values").

    Args:
        every_iter (bool): check the weights every iteration. Defaults to False.
        max_skipped (int): under a loss scaler, consecutive skipped steps
            tolerated. Defaults to 20.
        min_loss_scale (float): lowest healthy loss scale. Defaults to 1e-4.
    """

    priority = 'VERY_HIGH'

    def __init__(self, every_iter: bool = False, max_skipped: int = 20,
                 min_loss_scale: float = 1e-4):
        self.every_iter = every_iter
        self.max_skipped = max_skipped
        self.min_loss_scale = min_loss_scale
        self._skipped = 0
        self._interval = 50

    def before_train(self, runner) -> None:
        logger = next((h for h in runner.hooks if isinstance(h, LoggerHook)), None)
        self._interval = logger.interval if logger is not None else self._interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        scalars = runner.message_hub.log_scalars
        keys = [k for k in (outputs or {}) if 'loss' in k] + ['grad_norm']
        values = {k: scalars[f'train/{k}'].current() for k in keys if f'train/{k}' in scalars}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        if scaler is not None:
            self._skipped = self._skipped + 1 if bad else 0
        weights = (self.every_iter or self.every_n_train_iters(runner, self._interval)
                   or self.is_last_train_iter(runner)
                   or checkpoint_due(runner, epoch_end=False))
        self._check(runner, bad, weights, f'iteration {runner.iter + 1}', batch_idx)

    def after_train_epoch(self, runner) -> None:
        self._check(runner, {}, True, f'the end of epoch {runner.epoch + 1}')

    def _check(self, runner, bad: dict, weights: bool, where: str,
               batch_idx: Optional[int] = None) -> None:
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        loss_bad = bool(bad) if scaler is None else self._skipped >= self.max_skipped
        scale_bad = weights and scaler is not None and scaler.get_scale() < self.min_loss_scale
        weights_bad = False
        if weights or get_world_size() > 1:  # else no device work, no synchronisation
            model = unwrap_model(runner.model)
            flag = torch.tensor([loss_bad, scale_bad, False], dtype=torch.float32,
                                device=next(model.parameters()).device)
            if weights:  # the parameter list only where the weights are checked
                params = [p.detach() for p in model.parameters()]
                flag[2] = ~torch.isfinite(torch.nn.utils.get_total_norm(params))
            all_reduce(flag, op='max')
            loss_bad, scale_bad, weights_bad = (v > 0 for v in flag.tolist())
        if not (loss_bad or scale_bad or weights_bad):
            return
        bad_weights = self._non_finite_names(runner) if weights_bad else []
        if scale_bad and scaler is not None:
            bad = dict(bad, loss_scale=scaler.get_scale())
        raise FloatingPointError(self._message(runner, where, batch_idx, bad, bad_weights,
                                               loss_bad and not bad))

    @staticmethod
    def _non_finite_names(runner) -> List[str]:
        named = list(unwrap_model(runner.model).named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist()
        return [n for (n, _), ok in zip(named, finite) if not ok] or ['(norm overflows)']

    def _message(self, runner, where, batch_idx, bad, bad_weights, elsewhere=False) -> str:
        if batch_idx is not None and hasattr(runner.train_loop, 'max_epochs'):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        terms = ', '.join(f'{k}={v}' for k, v in bad.items() if 'loss' in k and k != 'loss_scale')
        n = len(list(unwrap_model(runner.model).parameters()))
        found = '; '.join(text for cond, text in [
            (terms, f'loss terms {terms}'),
            ('grad_norm' in bad, f'gradient norm {bad.get("grad_norm")}'),
            (bad_weights, f'{len(bad_weights)} of {n} parameter tensors (first: '
                          f'{", ".join(bad_weights[:3])})'),
            (elsewhere, 'values on another rank')] if cond)
        if 'loss_scale' in bad:
            what = (f'the loss scale fell to {bad["loss_scale"]:g}, below min_loss_scale='
                    f'{self.min_loss_scale:g}')
        elif getattr(runner.optim_wrapper, 'loss_scaler', None) is not None and not bad_weights:
            what = (f'{self._skipped} consecutive steps were skipped by the loss scaler '
                    f'(max_skipped={self.max_skipped}), the last with {found}')
        else:
            what = f'non-finite {found}'
        last = runner.message_hub.get_info('last_ckpt')
        kept = f'the last checkpoint, {last}, was written before and is kept' if last else \
            'no checkpoint was written'
        return (f'training diverged at {where}: {what}. Stopped before anything of this '
                f'iteration was saved; {kept}. Try a lower learning rate (optim_wrapper.'
                f'optimizer.lr, now {runner.optim_wrapper.get_lr().get("lr", ["?"])[0]}), a '
                'longer warm-up (param_scheduler LinearLR), gradient clipping (optim_wrapper.'
                'clip_grad=dict(max_norm=35, norm_type=2)), or with --amp loss scaling '
                "(AmpOptimWrapper, loss_scale='dynamic').")
