"""mmsplitattn.engine on a toy runner (a 2-parameter regression, no mmdet):
each hook, the checkpoint backend and every protection of SafeRunner."""
import argparse
import itertools
import os
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from torch import nn
from torch.utils.data import Dataset

from mmsplitattn.engine import (AtomicLocalBackend, DataError, DistributedTimeoutError,
                                SafeRunner, check_checkpoint, find_resumable_checkpoint,
                                write_atomically)
from mmsplitattn.engine import non_finite_check_hook
from mmsplitattn.engine.checkpoint import remove_stale_temp_files
from mmsplitattn.engine.utils import CfgOptionsAction


class ToyModel(BaseModel):
    """y = w x + b; the loss turns NaN from iteration ``nan_from`` on."""

    def __init__(self, width: int = 2, nan_from: int = 10 ** 9, nan_until: int = 10 ** 9):
        super().__init__()
        self.linear = nn.Linear(width, 1)
        self.nan_from, self.nan_until = nan_from, nan_until

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).squeeze(1)
        if mode != 'loss':
            return out
        loss = ((out - torch.stack(labels)) ** 2).mean()
        it = MessageHub.get_current_instance().get_info('iter')
        if self.nan_from <= it < self.nan_until:
            loss = loss * float('nan')
        return dict(loss=loss)


class ToyDataset(Dataset):
    metainfo = dict()

    def __init__(self, n: int = 4):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]), labels=torch.tensor(float(i)))


class CPUScalerWrapper(OptimWrapper):
    """AmpOptimWrapper's loss-scaling step on the CPU (the real one needs CUDA)."""

    def __init__(self, init_scale=4.0, **kwargs):
        super().__init__(**kwargs)
        self.loss_scaler = torch.amp.GradScaler('cpu', init_scale=init_scale)

    def backward(self, loss, **kwargs):
        self.loss_scaler.scale(loss).backward(**kwargs)

    def step(self, **kwargs):
        self.loss_scaler.unscale_(self.optimizer)
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()


class CallHook(Hook):
    """Calls ``fn(runner)`` before training iteration ``at`` (0-based)."""

    def __init__(self, at, fn):
        self.at, self.fn = at, fn

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            self.fn(runner)


_names = itertools.count()


def make_runner(work_dir, model=None, epochs=2, n=4, batch=2, optim=None, hooks=(),
                safety=None, **kwargs):
    model = model or ToyModel()
    cfg = dict(safety_cfg=dict(dict(data_check=False), **(safety or {})))
    defaults = dict(
        work_dir=str(work_dir), model=model,
        train_dataloader=dict(dataset=ToyDataset(n), batch_size=batch, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=optim or dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(hooks), default_scope='mmengine', cfg=cfg, randomness=dict(seed=0),
        experiment_name=f'toy{next(_names)}')
    defaults.update(kwargs)
    return SafeRunner(**defaults)


def _finite(path):
    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    return all(torch.isfinite(v).all() for v in state.values())


# Hooks --------------------------------------------------------------------------

def test_runner_adds_its_hooks_and_the_atomic_backend(tmp_path):
    own = non_finite_check_hook.NonFiniteCheckHook(every_iter=True)
    runner = make_runner(tmp_path, hooks=[own])
    names = [type(h).__name__ for h in runner.hooks]
    assert names.count('NonFiniteCheckHook') == 1 and 'RNGStateHook' in names
    assert own in runner.hooks  # the config's own hook (settings) wins
    ckpt = next(h for h in runner.hooks if type(h).__name__ == 'CheckpointHook')
    assert ckpt.backend_args == dict(backend='atomic_local')
    runner = make_runner(tmp_path / 'off', safety=dict(non_finite_check=False))
    assert 'NonFiniteCheckHook' not in [type(h).__name__ for h in runner.hooks]


def test_divergence_stops_before_the_checkpoint(tmp_path):
    runner = make_runner(tmp_path, model=ToyModel(nan_from=3), epochs=3)
    with pytest.raises(FloatingPointError, match=r'diverged at iteration 4 \(epoch 2, batch 2\)'
                       r': non-finite loss terms loss=nan') as error:
        runner.train()
    assert f'the last checkpoint, {tmp_path / "epoch_1.pth"}, was written' in str(error.value)
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth')) == ['epoch_1.pth']
    assert _finite(tmp_path / 'epoch_1.pth')
    runner = make_runner(tmp_path / 'iters', model=ToyModel(nan_from=3),
                         train_cfg=dict(by_epoch=False, max_iters=6))
    with pytest.raises(FloatingPointError, match=r'diverged at iteration 4: '):  # no epochs
        runner.train()


def test_weights_are_checked_at_the_interval_and_before_each_checkpoint(tmp_path):
    def poison_unused(runner):
        runner.model.register_parameter('unused', nn.Parameter(torch.full((2,), float('nan'))))

    logger = dict(type='LoggerHook', interval=100)
    runner = make_runner(tmp_path / 'a', hooks=[CallHook(1, poison_unused)],
                         default_hooks=dict(logger=logger))
    with pytest.raises(FloatingPointError, match=r'the end of epoch 1: non-finite 1 of 3 '
                       r'parameter tensors \(first: unused\)'):
        runner.train()
    assert not [p for p in os.listdir(tmp_path / 'a') if p.endswith('.pth')]
    runner = make_runner(tmp_path / 'b', hooks=[CallHook(0, poison_unused), dict(
        type='mmsplitattn.NonFiniteCheckHook', every_iter=True)], default_hooks=dict(logger=logger))
    with pytest.raises(FloatingPointError, match=r'diverged at iteration 1 '):
        runner.train()


def test_a_loss_scaler_skips_non_finite_steps_up_to_max_skipped(tmp_path):
    def run(model, init_scale=2.0 ** 10, **hook):
        optim = CPUScalerWrapper(init_scale=init_scale, optimizer=torch.optim.SGD(
            model.parameters(), lr=0.01))
        return make_runner(tmp_path / str(len(os.listdir(tmp_path))), model=model, optim=optim,
                           epochs=4, hooks=[dict(type='mmsplitattn.NonFiniteCheckHook',
                                                 **hook)])

    run(ToyModel(nan_from=1, nan_until=4), max_skipped=4).train()  # 3 skipped, then finite
    with pytest.raises(FloatingPointError, match='4 consecutive steps were skipped by the loss '
                       r'scaler \(max_skipped=4\), the last with loss terms loss=nan'):
        run(ToyModel(nan_from=1), max_skipped=4).train()
    with pytest.raises(FloatingPointError, match='the loss scale fell to 0.5, below '
                       'min_loss_scale=1'):  # 8 halved at each of 4 skipped steps
        run(ToyModel(nan_from=0), init_scale=8.0, max_skipped=100, min_loss_scale=1.0).train()


def test_every_rank_stops_when_one_finds_a_non_finite_value(tmp_path, monkeypatch):
    """The flag of every check is all-reduced (max): here the other rank's is 1."""
    monkeypatch.setattr(non_finite_check_hook, 'get_world_size', lambda: 2)
    monkeypatch.setattr(non_finite_check_hook, 'all_reduce',
                        lambda flag, op: flag.fill_(1.0) if op == 'max' else None)
    with pytest.raises(FloatingPointError, match='values on another rank'):
        make_runner(tmp_path).train()


class _RNGAtStart(Hook):
    priority = 'LOWEST'  # after RNGStateHook's before_train

    def before_train(self, runner):
        self.state = torch.get_rng_state()


def test_rng_states_travel_with_the_checkpoint(tmp_path):
    make_runner(tmp_path, epochs=1).train()
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)
    torch.manual_seed(123)
    start = _RNGAtStart()
    runner = make_runner(tmp_path, epochs=2, resume=True, hooks=[start])
    runner.train()
    assert runner.epoch == 2
    assert torch.equal(start.state, ckpt['rng_states'][0]['torch'])  # restored on resume
    start = _RNGAtStart()  # load_from (fine-tuning): the run's own generators
    make_runner(tmp_path / 'ft', load_from=str(tmp_path / 'epoch_1.pth'), hooks=[start]).train()
    assert not torch.equal(start.state, ckpt['rng_states'][0]['torch'])


def test_resuming_with_another_world_size_is_flagged(tmp_path):
    make_runner(tmp_path, epochs=1).train()
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)
    ckpt['rng_states'] *= 2  # as a 2-process run saves them
    torch.save(ckpt, tmp_path / 'epoch_1.pth')
    runner = make_runner(tmp_path, epochs=2, resume=True)
    runner.train()
    assert 'WARNING - resuming a run of 2 processes with 1: with the same batch_size per ' \
        'process the batch of every step changes 0.5x mid-schedule' \
        in open(runner.logger.handlers[-1].baseFilename).read()
    runner = make_runner(tmp_path / 'ft', load_from=str(tmp_path / 'epoch_1.pth'))
    runner.train()  # not a resume: nothing to say
    assert 'processes with' not in open(runner.logger.handlers[-1].baseFilename).read()


# Checkpoint files -------------------------------------------------------------

def test_atomic_backend_removes_the_old_file_after_the_new_one(tmp_path):
    backend = AtomicLocalBackend()
    (tmp_path / 'epoch_1.pth').write_bytes(b'old')
    AtomicLocalBackend().remove(tmp_path / 'epoch_1.pth')  # another instance, as MMEngine's
    assert (tmp_path / 'epoch_1.pth').exists()  # deferred until the next put completes
    with pytest.raises(OSError, match=r"cannot write .*epoch_2.pth'"):
        backend.put(b'x', tmp_path / 'missing_dir' / 'epoch_2.pth')
    assert (tmp_path / 'epoch_1.pth').exists()
    backend.put(b'new', tmp_path / 'epoch_2.pth')
    assert sorted(os.listdir(tmp_path)) == ['epoch_2.pth']


def test_interrupted_write_leaves_nothing_and_stale_temp_files_are_swept(tmp_path):
    def write(tmp):
        open(tmp, 'wb').write(b'partial')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(tmp_path / 'a.pth'), write)
    assert os.listdir(tmp_path) == []
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f'.epoch_3.pth.tmp{dead}').write_bytes(b'partial')
    (tmp_path / f'.epoch_4.pth.tmp{os.getpid()}').write_bytes(b'being written')
    assert remove_stale_temp_files(str(tmp_path)) == [str(tmp_path / f'.epoch_3.pth.tmp{dead}')]
    assert os.listdir(tmp_path) == [f'.epoch_4.pth.tmp{os.getpid()}']


def test_find_resumable_checkpoint_stays_in_its_work_dir(tmp_path):
    make_runner(tmp_path / 'orig', epochs=3, default_hooks=dict(
        checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))).train()
    import shutil
    shutil.copytree(tmp_path / 'orig', tmp_path / 'copy')
    copy = tmp_path / 'copy'
    assert (copy / 'last_checkpoint').read_text() == str(tmp_path / 'orig' / 'epoch_3.pth')
    (copy / 'epoch_3.pth').write_bytes((copy / 'epoch_3.pth').read_bytes()[:1000])
    path, bad = find_resumable_checkpoint(str(copy))
    assert path == str(copy / 'epoch_2.pth')
    assert [p for p, _ in bad] == [str(copy / 'epoch_3.pth')] and 'truncated' in bad[0][1]
    data = bytearray((copy / 'epoch_2.pth').read_bytes())
    data[len(data) // 2] ^= 0x10
    (copy / 'epoch_2.pth').write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match='CRC'):
        check_checkpoint(str(copy / 'epoch_2.pth'))


# The runner ---------------------------------------------------------------------

def test_resume_skips_a_truncated_checkpoint_and_says_what_it_does(tmp_path):
    make_runner(tmp_path, epochs=2).train()
    (tmp_path / 'epoch_2.pth').write_bytes((tmp_path / 'epoch_2.pth').read_bytes()[:1000])
    runner = make_runner(tmp_path, epochs=3, resume=True)
    runner.train()
    assert runner.epoch == 3
    log = open(runner.logger.handlers[-1].baseFilename).read()
    assert f'--resume: skipping {tmp_path / "epoch_2.pth"}' in log
    assert f'--resume: resuming from {tmp_path / "epoch_1.pth"}, the newest good' in log
    assert _finite(tmp_path / 'epoch_2.pth')  # rewritten from the resumed run
    finished = make_runner(tmp_path, epochs=3, resume=True)
    finished.train()
    log = open(finished.logger.handlers[-1].baseFilename).read()
    assert 'WARNING - --resume: ' in log and 'the run is finished, nothing is trained' in log
    empty = make_runner(tmp_path / 'typo', epochs=1, resume=True)
    empty.train()
    log = open(empty.logger.handlers[-1].baseFilename).read()
    assert f"WARNING - --resume: no checkpoint in '{tmp_path / 'typo'}'" in log


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    make_runner(tmp_path, epochs=1).train()
    ckpt = str(tmp_path / 'epoch_1.pth')
    other = make_runner(tmp_path / 'other', model=ToyModel(width=3), load_from=ckpt)
    with pytest.raises(ValueError, match=rf"(?s)checkpoint '{ckpt}' does not fit the model "
                       r'\(ToyModel\).*size mismatch for linear.weight.*allow_partial_load'):
        other.load_or_resume()
    partial = make_runner(tmp_path / 'partial', model=ToyModel(width=3), load_from=ckpt,
                          safety=dict(allow_partial_load=True))
    partial.load_or_resume()
    assert torch.equal(partial.model.linear.bias, torch.load(
        ckpt, weights_only=False)['state_dict']['linear.bias'])


@pytest.mark.parametrize('signum,code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupts_exit_with_one_line(tmp_path, signum, code):
    runner = make_runner(tmp_path, epochs=3, hooks=[
        CallHook(3, lambda r: os.kill(os.getpid(), signum))])
    with pytest.raises(SystemExit) as error:
        runner.train()
    assert error.value.code == code
    log = open(runner.logger.handlers[-1].baseFilename).read()
    assert f'at epoch 1, iteration 3; the last checkpoint written is {tmp_path / "epoch_1.pth"}' \
           ': continue with --resume' in log
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_only_collective_timeouts_are_reported_as_such(tmp_path):
    def fail(message):
        def raise_(runner):
            raise RuntimeError(message)
        return CallHook(0, raise_)

    gloo = '[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 3000ms'
    with pytest.raises(DistributedTimeoutError, match='rank 0: a collective operation did not '
                       r'complete within 15 s \(env_cfg.dist_cfg.timeout\)'):
        make_runner(tmp_path / 'a', hooks=[fail(gloo)],
                    env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=15))).train()
    with pytest.raises(RuntimeError, match='^DataLoader timed out after 5 seconds$'):
        make_runner(tmp_path / 'b', hooks=[fail('DataLoader timed out after 5 seconds')]).train()


def test_auto_scale_lr_scales_by_the_real_batch(tmp_path):
    runner = make_runner(tmp_path, epochs=1, n=4, batch=16,
                         auto_scale_lr=dict(enable=True, base_batch_size=2))
    runner.train()
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(0.01 * 4 / 2)


def test_data_check_runs_once_on_the_runners_dataset_and_stops_the_run(tmp_path, monkeypatch):
    from mmsplitattn.engine import runner as runner_module
    calls = []

    def check(dataset, loader, report, read_headers=False):
        calls.append((dataset, loader))
        report.checked[loader] = f'{len(dataset)} entries'
        report.add(loader, 'odd category', 'x.jpg', fatal=False)
        if len(calls) == 1:
            report.add(loader, 'missing image', 'y.jpg')

    monkeypatch.setattr(runner_module, 'check_dataset', check)
    with pytest.raises(ValueError, match=r'missing image: 1 \(y.jpg\)\n.*\n  .*odd category'):
        make_runner(tmp_path, safety=dict(data_check=True)).train()
    runner = make_runner(tmp_path, epochs=1, safety=dict(data_check=True))
    runner.train()
    assert calls[1:] == [(runner.train_dataloader.dataset, 'train_dataloader')]  # once
    assert 'train_dataloader: odd category: 1 (x.jpg)' in \
        open(runner.logger.handlers[-1].baseFilename).read()


def test_a_failing_data_check_is_every_ranks_verdict(tmp_path, monkeypatch):
    """An error inside rank 0's check is broadcast as the verdict (no rank is left waiting)."""
    from mmsplitattn.engine import runner as runner_module
    sent = []

    def check(dataset, loader, report, read_headers=False):
        raise PermissionError(13, 'Permission denied', 'x.jpg')

    monkeypatch.setattr(runner_module, 'check_dataset', check)
    monkeypatch.setattr(runner_module, 'broadcast_object_list', sent.append)
    with pytest.raises(ValueError, match=r"^train_dataloader: the dataset check failed: "
                       r"PermissionError: \[Errno 13\] Permission denied: 'x.jpg'"):
        make_runner(tmp_path, safety=dict(data_check=True)).train()
    assert sent and sent[0][0].startswith('train_dataloader: the dataset check failed')


def test_an_evaluator_that_does_not_load_is_named_as_such(tmp_path):
    runner = make_runner(tmp_path, test_dataloader=dict(
        dataset=ToyDataset(2), batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False)),
        test_cfg=dict(), test_evaluator=dict(type='mmdet.CocoMetric',
                                             ann_file=str(tmp_path / 'gone.json')))
    with pytest.raises(DataError, match=r"an evaluator does not build: FileNotFoundError: .*"
                       r"gone.json.*point its ann_file at the annotations"):
        runner.test()


def test_a_dataset_that_does_not_load_is_named_with_its_loader(tmp_path):
    gone = dict(type='mmpretrain.CustomDataset', data_root=str(tmp_path / 'gone'),
                ann_file='meta/train.txt', pipeline=[])
    runner = make_runner(tmp_path, train_dataloader=dict(dataset=gone, batch_size=2))
    with pytest.raises(DataError, match=r"train_dataloader: the dataset does not load: "
                       r"FileNotFoundError: .*gone/meta/train.txt.*--cfg-options "
                       r"train_dataloader.dataset.data_root="):
        runner.train()
    loader = dict(dataset=dict(type='RepeatDataset', times=2, dataset=gone), batch_size=2)
    runner = make_runner(tmp_path / 'wrapped', train_dataloader=loader,
                         cfg=dict(safety_cfg=dict(data_check=False), train_dataloader=loader))
    with pytest.raises(DataError, match=r"--cfg-options train_dataloader.dataset.dataset."
                       r"data_root="):  # the key of the dataset inside the wrapper
        runner.train()


def test_a_missing_load_from_is_named_before_the_data_loads(tmp_path):
    no_data = dict(type='mmpretrain.CustomDataset', data_root=str(tmp_path / 'gone'),
                   ann_file='meta/train.txt', pipeline=[])
    with pytest.raises(FileNotFoundError, match=r"^checkpoint '.*typo.pth' does not exist$"):
        make_runner(tmp_path, load_from=str(tmp_path / 'typo.pth'),
                    train_dataloader=dict(dataset=no_data, batch_size=2))


@pytest.mark.parametrize('pair', ['train_cfg.max_epochs=', 'a.b', '=3'])
def test_malformed_cfg_options_are_named(pair, capsys):
    parser = argparse.ArgumentParser(prog='train.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    with pytest.raises(SystemExit) as error:
        parser.parse_args(['--cfg-options', 'model.x=1', pair])
    assert error.value.code == 2
    assert f"argument --cfg-options: {pair!r} is not key=value" in capsys.readouterr().err
    assert parser.parse_args(['--cfg-options', 'a.b=1']).cfg_options == {'a.b': 1}


def test_amp_keeps_the_configs_own_amp_wrapper():
    from mmengine.config import Config
    from conftest import load_tool
    train = load_tool('train.py')
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', loss_scale=512.0,
                                         optimizer=dict(type='SGD', lr=0.1))))
    train.use_amp(cfg)
    assert cfg.optim_wrapper.loss_scale == 512.0 and cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match="--amp needs optim_wrapper.type OptimWrapper"):
        train.use_amp(Config(dict(optim_wrapper=dict(type='OptimWrapperDict'))))
