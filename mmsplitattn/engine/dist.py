"""Process groups without CUDA: ``mmengine.dist.init_dist`` always calls
``torch.cuda.set_device``, so on a CPU-only machine the gloo group is made
here, from torchrun's or srun's environment."""
import datetime
import os
import subprocess
from typing import Optional

import torch.distributed as dist


def _slurm_environment() -> None:
    """RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* from srun's, as MMEngine derives them."""
    try:
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        nodes = os.environ['SLURM_NODELIST']
    except KeyError as e:
        raise RuntimeError(f'--launcher slurm: environment variable {e.args[0]} is not set; '
                           'start the tool with srun (tools/slurm_train.sh)') from None
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', nodes], check=True,
                               capture_output=True, text=True).stdout.split()
        if not hosts:
            raise RuntimeError(f'scontrol show hostnames {nodes!r} printed no host')
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ.setdefault('MASTER_PORT', '29500')


def init_cpu_dist(launcher: str, timeout: Optional[float] = None) -> None:
    """Create the gloo process group for ``launcher`` ('pytorch' or 'slurm');
    ``timeout`` (s, ``env_cfg.dist_cfg.timeout``) bounds every collective."""
    if launcher not in ('pytorch', 'slurm'):
        raise RuntimeError(f'--launcher {launcher} needs CUDA; without GPUs launch '
                           'through torchrun (tools/dist_train.sh, --launcher pytorch) '
                           'or srun (tools/slurm_train.sh, --launcher slurm)')
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f'env_cfg.dist_cfg.timeout must be a number of seconds > 0, got '
                         f'{timeout!r}')
    if launcher == 'slurm':
        _slurm_environment()
    kwargs = {} if timeout is None else {'timeout': datetime.timedelta(seconds=timeout)}
    dist.init_process_group('gloo', init_method='env://', **kwargs)


def is_collective_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a timed-out torch.distributed operation: a gloo
    collective (a RuntimeError from gloo's transport) or a store/backend
    error; not a DataLoader's timeout."""
    text = str(error).lower()
    return ('timed out' in text or 'timeout' in text) and (
        isinstance(error, dist.DistError) or '/gloo/' in text)
