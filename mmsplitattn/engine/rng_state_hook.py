"""Keep the random number generators in checkpoints, so a resumed run draws
the same random numbers (RPN/RoI sampling, dropout, ...) as an uninterrupted
one. MMEngine restores the model, optimizer, schedulers and data order, but
not the generators of the training processes."""
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook

from mmsplitattn.registry import HOOKS


def _rng_state():
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's generator states with each checkpoint and restore
    them when the checkpoint is loaded by the same number of processes.

    Checkpoints are written by rank 0 alone, so in a distributed run the
    states are gathered just before the CheckpointHook (VERY_LOW priority)
    saves: at each epoch end, and at the iterations an iteration-based
    CheckpointHook saves at.
    """

    priority = 'LOW'

    def __init__(self):
        self._states = None
        self._checkpoint_hook = None

    def _gather(self):
        if get_world_size() > 1:
            self._states = all_gather_object(_rng_state())

    def before_train(self, runner):
        self._checkpoint_hook = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        hook = self._checkpoint_hook
        if hook is not None and not hook.by_epoch and (
                self.every_n_train_iters(runner, hook.interval)
                or self.is_last_train_iter(runner)):
            self._gather()

    def after_train_epoch(self, runner):
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint):
        if get_world_size() > 1:
            if self._states is not None:
                checkpoint['rng_states'] = self._states
        else:
            checkpoint['rng_states'] = [_rng_state()]

    def after_load_checkpoint(self, runner, checkpoint):
        states = checkpoint.get('rng_states')
        if states is None:
            return
        if len(states) != get_world_size():
            runner.logger.warning(
                f'checkpoint holds generator states of {len(states)} processes, '
                f'this run has {get_world_size()}: not restoring them')
            return
        _set_rng_state(states[get_rank()])
