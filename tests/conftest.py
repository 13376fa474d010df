import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Tools started by the tests load MMEngine checkpoints with torch >= 2.6.
os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


def run_tool(args, cwd, env=None, timeout=900, check=True):
    """Run a tools/ entry point with the test interpreter; returns the process."""
    if args[0].endswith('.py'):
        cmd = [sys.executable, osp.join(ROOT, args[0])] + list(args[1:])
    else:
        cmd = ['bash', osp.join(ROOT, args[0])] + list(args[1:])
    full_env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1'
                    if args[0].startswith('tools/dist_') else os.environ.get('OMP_NUM_THREADS', ''))
    full_env = {k: v for k, v in full_env.items() if v != ''}
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc


def randomize_norms(model):
    """Give every BN non-trivial statistics so equivalence tests mean something."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """A working directory holding data/demo/{coco,cityscapes} (small)."""
    sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
    from make_demo_data import make_demo_data
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(str(root / 'data' / 'demo'), seed=0, coco_train=16, coco_val=8,
                   city_train=8, city_val=4)
    return root
