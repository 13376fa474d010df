"""Refuse a checkpoint that does not fit the model instead of loading the
matching part with a warning."""
import re

import torch
from mmengine.hooks import Hook

from mmsplitattn.registry import HOOKS


def _unwrap(model):
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def state_dict_mismatch(model_state: dict, checkpoint_state: dict):
    """(missing, unexpected, shape-mismatched) keys of ``checkpoint_state``
    against ``model_state``; BN ``num_batches_tracked`` counters, which torch
    fills in for old checkpoints, are not required."""
    missing = [k for k in model_state if k not in checkpoint_state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in checkpoint_state if k not in model_state]
    mismatched = [(k, tuple(checkpoint_state[k].shape), tuple(v.shape))
                  for k, v in model_state.items()
                  if k in checkpoint_state and torch.is_tensor(checkpoint_state[k])
                  and checkpoint_state[k].shape != v.shape]
    return missing, unexpected, mismatched


def _listing(keys, limit=8):
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Compare every checkpoint the Runner loads (``load_from``, ``--resume``,
    ``tools/test.py``'s checkpoint) with the model before it is loaded, and
    raise ``ValueError`` listing the missing, unexpected and shape-mismatched
    keys if it does not fit. ``tools/train.py``/``tools/test.py`` add it;
    ``--allow-partial-load`` (``allow_partial=True``) makes it a warning, for
    users who mean to load a part (e.g. fine-tuning from another head).

    Keys are compared after the Runner's own revision (a leading ``module.``
    removed).
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False):
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', checkpoint)
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        model = _unwrap(runner.model)
        missing, unexpected, mismatched = state_dict_mismatch(model.state_dict(), state)
        if not (missing or unexpected or mismatched):
            return
        source = runner.cfg.get('load_from') or 'the checkpoint'
        lines = [f'checkpoint {source!r} does not fit the model '
                 f'({type(model).__name__}, {len(state)} tensors in the checkpoint): '
                 f'{len(missing)} missing, {len(unexpected)} unexpected, '
                 f'{len(mismatched)} of another shape']
        if missing:
            lines.append(f'  missing in the checkpoint: {_listing(missing)}')
        if unexpected:
            lines.append(f'  not in the model: {_listing(unexpected)}')
        if mismatched:
            lines.append('  shape (checkpoint vs model): ' + _listing(
                [f'{k} {c} vs {m}' for k, c, m in mismatched], limit=4))
        if self.allow_partial:
            runner.logger.warning('\n'.join(lines) + '\nloading the matching tensors only '
                                  '(--allow-partial-load)')
            return
        lines.append('Is it a checkpoint of this config? To load only the tensors that '
                     'match (e.g. fine-tuning from another head), pass --allow-partial-load.')
        raise ValueError('\n'.join(lines))
