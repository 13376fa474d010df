"""Distributed launches without CUDA (gloo), with the config's timeout, and
the name of the rank that stopped answering when a collective times out."""
import datetime
import os
import subprocess
import threading
import time
from typing import Optional

import torch

# The process group's store under our own prefix, and the heartbeat interval (s).
_HEARTBEAT = {'store': None, 'interval': None}


def _slurm_environment() -> None:
    """RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT from the variables
    srun sets, as MMEngine's slurm launcher derives them for CUDA."""
    try:
        rank, world_size = os.environ['SLURM_PROCID'], os.environ['SLURM_NTASKS']
        node_list = os.environ['SLURM_NODELIST']
    except KeyError as e:
        raise RuntimeError(f'--launcher slurm: environment variable {e.args[0]} is not set; '
                           'start the tool with srun (tools/slurm_train.sh)') from None
    os.environ['RANK'] = rank
    os.environ['WORLD_SIZE'] = world_size
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        out = subprocess.run(['scontrol', 'show', 'hostnames', node_list], check=True,
                             capture_output=True, text=True).stdout.split()
        if not out:
            raise RuntimeError(f'scontrol show hostnames {node_list!r} printed no host')
        os.environ['MASTER_ADDR'] = out[0]
    os.environ.setdefault('MASTER_PORT', '29500')


def _timeout(seconds) -> Optional[datetime.timedelta]:
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f'env_cfg.dist_cfg.timeout must be a number of seconds > 0, got '
                         f'{seconds!r}')
    return datetime.timedelta(seconds=seconds)


def init_cpu_process_group(launcher: str, timeout: Optional[float] = None) -> None:
    """Create the gloo process group from torchrun's or srun's environment.

    ``timeout`` (seconds, ``env_cfg.dist_cfg.timeout`` as MMEngine reads it)
    bounds every collective and the store; None keeps torch's default. A
    heartbeat thread counts up under the store, so a timed-out rank can name
    the ranks that stopped (see :func:`describe_timeout`).
    """
    import torch.distributed as dist
    if launcher == 'slurm':
        _slurm_environment()
    td = _timeout(timeout)
    kwargs = {} if td is None else {'timeout': td}
    store, rank, world_size = next(dist.rendezvous('env://', **kwargs))
    if td is not None:
        store.set_timeout(td)
    dist.init_process_group('gloo', store=dist.PrefixStore('default_pg', store), rank=rank,
                            world_size=world_size, **kwargs)
    seconds = td.total_seconds() if td is not None else 1800.0
    _start_heartbeat(dist.PrefixStore('mmsplitattn_heartbeat', store), rank,
                     interval=min(10.0, max(0.5, seconds / 10)))


def _start_heartbeat(store, rank: int, interval: float) -> None:
    _HEARTBEAT.update(store=store, interval=interval)

    def beat():
        while True:
            try:
                store.add(f'rank{rank}', 1)
            except Exception:  # noqa: BLE001 - the store went away: the job is ending
                return
            time.sleep(interval)

    threading.Thread(target=beat, name='mmsplitattn-heartbeat', daemon=True).start()


def is_collective_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a collective or store operation that timed out."""
    text = str(error).lower()
    return 'timed out' in text or 'timeout' in text


def describe_timeout(error: BaseException, timeout: Optional[float]) -> str:
    """A message for a timed-out collective naming the ranks whose heartbeat
    stopped (read twice, two heartbeat intervals apart)."""
    import torch.distributed as dist
    rank, world_size = dist.get_rank(), dist.get_world_size()
    limit = f'{timeout:g} s (env_cfg.dist_cfg.timeout)' if timeout else "torch's default"
    head = (f'rank {rank}: a collective operation did not complete within {limit}; ')
    store, interval = _HEARTBEAT['store'], _HEARTBEAT['interval']
    if store is None:
        return head + f'the other ranks could not be checked ({error})'
    keys = [f'rank{r}' for r in range(world_size)]
    try:
        store.set_timeout(datetime.timedelta(seconds=max(5.0, 2 * interval)))
        before = [int(store.add(k, 0)) for k in keys]
        time.sleep(2.5 * interval)
        after = [int(store.add(k, 0)) for k in keys]
    except Exception as e:  # noqa: BLE001
        return head + (f'the rendezvous store ({os.environ.get("MASTER_ADDR")}:'
                       f'{os.environ.get("MASTER_PORT")}) does not answer either ({e}): the '
                       'process hosting it (rank 0, or the launcher) is stopped or gone')
    stopped = [r for r in range(world_size) if after[r] == before[r] and r != rank]
    if not stopped:
        return head + f'every rank is still alive, so one of them is stuck or slow ({error})'
    names = ', '.join(str(r) for r in stopped)
    return (head + f'rank{"s" if len(stopped) > 1 else ""} {names} stopped responding '
            '(no heartbeat): the process is stopped, hung or its node is gone. '
            f'Original error: {error}')


def adapt_cfg_to_device(cfg) -> None:
    """Make a distributed launch work without CUDA: gloo, CPU-side DDP.

    MMEngine's ``init_dist`` always calls ``torch.cuda.set_device``, so on a
    CPU-only machine the process group (gloo, from torchrun's or srun's
    environment) is created here, with ``env_cfg.dist_cfg.timeout``, and the
    Runner finds it ready. With CUDA, MMEngine's own launchers are used.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher not in ('pytorch', 'slurm'):
        raise RuntimeError(f'--launcher {launcher} needs CUDA; without GPUs launch '
                           'through torchrun (tools/dist_train.sh, --launcher pytorch) '
                           'or srun (tools/slurm_train.sh, --launcher slurm)')
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    import torch.distributed as dist
    if not dist.is_initialized():
        init_cpu_process_group(launcher, dist_cfg.get('timeout'))


class DistributedTimeoutError(RuntimeError):
    """A collective timed out; the message names the ranks that stopped."""


def run_reporting_timeouts(fn, cfg):
    """``fn()``; a collective timeout in a distributed run is re-raised as
    :class:`DistributedTimeoutError` naming the ranks that stopped."""
    try:
        return fn()
    except RuntimeError as e:
        import torch.distributed as dist
        if not (dist.is_available() and dist.is_initialized() and is_collective_timeout(e)):
            raise
        timeout = ((cfg.get('env_cfg') or {}).get('dist_cfg') or {}).get('timeout')
        raise DistributedTimeoutError(describe_timeout(e, timeout)) from e
