"""Stop training when it diverges, before anything of the bad iteration is saved."""
import math
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook, LoggerHook
from mmengine.runner import EpochBasedTrainLoop

from mmsplitattn.registry import HOOKS

from .checkpoint import checkpoint_due
from .utils import unwrap_model

ADVICE = ('Try a lower learning rate (optim_wrapper.optimizer.lr, now {lr}), a longer warm-up '
          '(param_scheduler LinearLR), gradient clipping (optim_wrapper.clip_grad=dict('
          "max_norm=35, norm_type=2)), or with --amp loss scaling (AmpOptimWrapper, "
          "loss_scale='dynamic').")


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
        self.every_iter, self.max_skipped, self.min_loss_scale = (
            every_iter, max_skipped, min_loss_scale)
        self._skipped, self._interval = 0, 50

    def before_train(self, runner) -> None:
        logger = next((h for h in runner.hooks if isinstance(h, LoggerHook)), None)
        self._interval = getattr(logger, 'interval', self._interval)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        scalars = runner.message_hub.log_scalars
        keys = [f'train/{k}' for k in (outputs or {}) if 'loss' in k] + ['train/grad_norm']
        bad = {k[6:]: v for k in keys if k in scalars
               for v in [scalars[k].current()] if not math.isfinite(v)}
        self._skipped = self._skipped + 1 if bad else 0
        weights = (self.every_iter or self.every_n_train_iters(runner, self._interval)
                   or self.is_last_train_iter(runner) or checkpoint_due(runner, epoch_end=False))
        where = f'iteration {runner.iter + 1}' + (
            f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
            if isinstance(runner.train_loop, EpochBasedTrainLoop) else '')
        self._check(runner, bad, weights, where)

    def after_train_epoch(self, runner) -> None:
        self._check(runner, {}, True, f'the end of epoch {runner.epoch + 1}')

    def _check(self, runner, bad: dict, weights: bool, where: str) -> None:
        """All-reduce (loss, loss scale, weights) verdicts; raise if one is bad."""
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        flags = [bool(bad) if scaler is None else self._skipped >= self.max_skipped,
                 weights and scaler is not None and scaler.get_scale() < self.min_loss_scale,
                 False]
        model = unwrap_model(runner.model)
        if weights or get_world_size() > 1:  # else no device work, no synchronisation
            flag = torch.tensor(flags, dtype=torch.float32, device=next(model.parameters()).device)
            if weights:  # the parameter list only where the weights are checked
                params = [p.detach() for p in model.parameters()]
                flag[2] = ~torch.isfinite(torch.nn.utils.get_total_norm(params))
            all_reduce(flag, op='max')
            flags = [v > 0 for v in flag.tolist()]
        if not any(flags):
            return
        named = list(model.named_parameters()) if flags[2] else []
        finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist() if named else []
        tensors = [n for (n, _), ok in zip(named, finite) if not ok] or ['(norm overflows)']
        terms = ', '.join(f'{k}={v}' for k, v in bad.items() if 'loss' in k)
        found = '; '.join(text for cond, text in [
            (terms, f'loss terms {terms}'),
            ('grad_norm' in bad, f'gradient norm {bad.get("grad_norm")}'),
            (flags[2], f'{len(tensors)} of {len(named)} parameter tensors (first: '
                       f'{", ".join(tensors[:3])})'),
            (flags[0] and not bad, 'values on another rank')] if cond)
        if flags[1] and scaler is not None:
            what = (f'the loss scale fell to {scaler.get_scale():g}, below min_loss_scale='
                    f'{self.min_loss_scale:g}')
        elif scaler is not None and not flags[2]:
            what = (f'{self._skipped} consecutive steps were skipped by the loss scaler '
                    f'(max_skipped={self.max_skipped}), the last with {found}')
        else:
            what = f'non-finite {found}'
        last = runner.message_hub.get_info('last_ckpt')
        kept = f'the last checkpoint, {last}, was written before and is kept' if last else \
            'no checkpoint was written'
        lr = runner.optim_wrapper.get_lr().get('lr', ['?'])[0]
        raise FloatingPointError(f'training diverged at {where}: {what}. Stopped before anything '
                                 f'of this iteration was saved; {kept}. {ADVICE.format(lr=lr)}')
