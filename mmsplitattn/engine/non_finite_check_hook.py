"""Stop training at the first non-finite loss, gradient norm or weight."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmsplitattn.registry import HOOKS


def _unwrap(model):
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def non_finite_tensors(named_tensors):
    """Names of the floating-point tensors of ``named_tensors`` holding a NaN or
    an infinity (one synchronisation for all of them)."""
    named = [(n, t) for n, t in named_tensors if torch.is_tensor(t) and t.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(t).all() for _, t in named]).cpu()
    return [n for (n, _), ok in zip(named, finite.tolist()) if not ok]


def _value(v) -> float:
    return float(v.detach().float().mean()) if torch.is_tensor(v) else float(v)


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Raise ``FloatingPointError`` at the first training iteration whose loss
    terms, gradient norm (logged where ``optim_wrapper.clip_grad`` is set) or
    parameters are not finite, naming the iteration, the bad terms and what
    to try.

    It runs before every other hook of the iteration (``VERY_HIGH``), so the
    CheckpointHook never saves, and never rotates away, anything after the
    divergence. ``tools/train.py`` adds it unless the config's
    ``custom_hooks`` has one already or ``--no-nonfinite-check`` is given.

    Args:
        check_params (bool): also check every parameter after the update: it
            catches a non-finite gradient that left the loss finite. One pass
            over the weights per iteration. Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_params: bool = True):
        self.check_params = check_params

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        bad_terms = {k: _value(v) for k, v in (outputs or {}).items()
                     if 'loss' in k and not math.isfinite(_value(v))}
        grad_norm = None
        scalars = runner.message_hub.log_scalars
        # A loss-scaling AMP wrapper skips steps whose gradients overflowed: expected.
        if 'train/grad_norm' in scalars and not hasattr(runner.optim_wrapper, 'loss_scaler'):
            value = scalars['train/grad_norm'].current()
            if not math.isfinite(value):
                grad_norm = value
        bad_params = []
        if self.check_params:
            bad_params = non_finite_tensors(_unwrap(runner.model).named_parameters())
        if not bad_terms and grad_norm is None and not bad_params:
            return
        raise FloatingPointError(self._message(runner, batch_idx, bad_terms, grad_norm,
                                               bad_params))

    @staticmethod
    def _message(runner, batch_idx, bad_terms, grad_norm, bad_params) -> str:
        found = []
        if bad_terms:
            found.append('loss terms ' + ', '.join(f'{k}={v}' for k, v in bad_terms.items()))
        if grad_norm is not None:
            found.append(f'gradient norm {grad_norm}')
        if bad_params:
            n = sum(1 for _ in _unwrap(runner.model).parameters())
            found.append(f'{len(bad_params)} of {n} parameter tensors (first: '
                         f'{", ".join(bad_params[:3])})')
        where = f'iteration {runner.iter + 1}'
        if runner.train_loop is not None and hasattr(runner.train_loop, 'max_epochs'):
            where += f' (epoch {runner.epoch + 1}, batch {batch_idx + 1})'
        lrs = runner.optim_wrapper.get_lr().get('lr', [])
        lr = f'{lrs[0]:g}' if lrs else '?'
        last = runner.message_hub.get_info('last_ckpt')
        kept = (f'the last checkpoint, {last}, was written before and is kept'
                if last else 'no checkpoint was written')
        return (f'training diverged at {where}: non-finite {"; ".join(found)}. Stopped '
                f'before anything of this iteration was saved; {kept}. Try a lower learning '
                f'rate (optim_wrapper.optimizer.lr, now {lr}), a longer warm-up '
                '(param_scheduler LinearLR), gradient clipping '
                '(optim_wrapper.clip_grad=dict(max_norm=35, norm_type=2)), or with --amp '
                "loss scaling (AmpOptimWrapper, loss_scale='dynamic').")
