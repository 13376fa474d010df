"""Generator states in checkpoints: a resumed run draws the same random numbers
(RoI sampling, dropout, ...) as an uninterrupted one; MMEngine does not keep them."""
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook

from mmsplitattn.registry import HOOKS

from .checkpoint import checkpoint_due


def _rng_state() -> dict:
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's generator states with each checkpoint (gathered on all
    ranks before rank 0 saves) and restore them on a run of as many processes."""

    priority = 'LOW'
    _states = None  # every rank's, gathered where a checkpoint follows
    _loaded = None  # those of the checkpoint loaded, until the run starts

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if get_world_size() > 1 and checkpoint_due(runner, epoch_end=False):
            self._states = all_gather_object(_rng_state())

    def after_train_epoch(self, runner) -> None:  # save_best checkpoints follow a validation
        if get_world_size() > 1:
            self._states = all_gather_object(_rng_state())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._states if get_world_size() > 1 else [_rng_state()]
        if states is not None:
            checkpoint['rng_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('rng_states')

    def before_train(self, runner) -> None:
        """Restore the loaded states if the run resumed (``runner.iter > 0``): a
        ``load_from`` start or a test keeps its own."""
        states, self._loaded = self._loaded, None
        if states is None or runner.iter == 0:
            return
        if len(states) != get_world_size():
            runner.logger.warning(
                f'resuming a run of {len(states)} processes with {get_world_size()}: with the '
                f'same batch_size per process the batch of every step changes '
                f'{get_world_size() / len(states):g}x mid-schedule (scale the learning rate to '
                'match, or resume with as many processes as before), and the generator states '
                'are not restored')
            return
        state = states[get_rank()]
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
