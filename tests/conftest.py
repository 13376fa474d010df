import os
import os.path as osp
import shutil
import socket
import subprocess
import sys

# Under pytest-xdist (`make test` runs two workers), each worker and the tools it
# starts use one thread, so the workers do not oversubscribe the cores.
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'

import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402
from torch.nn.modules.batchnorm import _BatchNorm  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if os.environ.get('PYTEST_XDIST_WORKER'):
    torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'xdist_group(name): tests that share module fixtures run on one '
        'pytest-xdist worker (make test uses --dist loadgroup)')
    config.addinivalue_line(
        'markers', 'slow: real training runs, subprocess launches and exports that take '
        'seconds to minutes; `pytest -m "not slow"` is the edit-test loop')


def shared_dir(tmp_path_factory, name, make):
    """``<basetemp>/name``, filled by ``make(path)`` once per test session: with
    pytest-xdist the workers share it (the first one makes it under a file lock,
    the others wait for it), so an expensive fixture is not built per worker."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent  # the run's directory, above the per-worker ones
    path = base / name
    with FileLock(str(path) + '.lock'):
        if not (path / '.complete').exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            (path / '.complete').touch()
    return path


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


def logged_scalars(work_dir):
    """Every row of the scalars.json logs MMEngine wrote under ``work_dir``."""
    import glob
    import json
    rows = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return rows


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
    """A working directory holding data/demo/{coco,cityscapes,imagenet} (small)."""
    sys.path.insert(0, osp.join(ROOT, 'tools', 'misc'))
    from make_demo_data import make_demo_data
    return shared_dir(tmp_path_factory, 'demo', lambda root: make_demo_data(
        str(root / 'data' / 'demo'), seed=0, coco_train=16, coco_val=8, city_train=8,
        city_val=4, cls_train=12, cls_val=6))


DET_CFG = osp.join(ROOT, 'configs', 'demo', 'maskrcnn_resnest_demo.py')
SEG_CFG = osp.join(ROOT, 'configs', 'demo', 'fcn_resnest_demo.py')
# A tiny, deterministic run: 8 images, batch 2, one worker restarted per epoch.
DET_QUICK = ['train_dataloader.dataset.indices=8', 'train_dataloader.batch_size=2',
             'train_dataloader.persistent_workers=False', 'val_dataloader.persistent_workers=False',
             'randomness.seed=0']


@pytest.fixture(scope='session')
def det_run(demo_root, tmp_path_factory):
    """Two epochs of the detection demo (epoch_1.pth, epoch_2.pth, validated)."""
    return shared_dir(tmp_path_factory, 'det_full', lambda work: run_tool(
        ['tools/train.py', DET_CFG, '--work-dir', str(work), '--cfg-options',
         'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', *DET_QUICK], cwd=demo_root))


# 2 images of 64x64, batch 2: one iteration an epoch, no validation.
TINY = ['train_dataloader.dataset.indices=2', 'train_dataloader.batch_size=2',
        'train_dataloader.persistent_workers=False', 'randomness.seed=0',
        'train_dataloader.dataset.pipeline.2.scales=[(64, 64)]',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
# A diverging run (lr 1e6, unclipped: NaN in its third iteration) and checkpoints without
# optimizer and scheduler states, so that a resumed run takes the learning rate of the config.
DIVERGE = ['optim_wrapper.optimizer.lr=1e6', 'optim_wrapper.clip_grad=None']
NO_STATES = ['default_hooks.checkpoint.save_optimizer=False',
             'default_hooks.checkpoint.save_param_scheduler=False']


@pytest.fixture(scope='session')
def tiny_run(demo_root, tmp_path_factory):
    """Two TINY epochs of the detection demo (epoch_1.pth, epoch_2.pth: weights only)."""
    return shared_dir(tmp_path_factory, 'det_tiny', lambda work: run_tool(
        ['tools/train.py', DET_CFG, '--work-dir', str(work), '--cfg-options',
         'train_cfg.max_epochs=2', *TINY, *NO_STATES], cwd=demo_root))


def copy_with_truncated_latest(run_dir, work):
    """``work``: a copy of ``run_dir`` (epoch_1.pth, epoch_2.pth, last_checkpoint naming the
    original's epoch_2.pth) whose epoch_2.pth is cut to 100 kB, as a crash in a copy leaves it."""
    work.mkdir()
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'):
        shutil.copy(run_dir / name, work / name)
    (work / 'epoch_2.pth').write_bytes((run_dir / 'epoch_2.pth').read_bytes()[:100000])
    return work


def finite_checkpoint(path):
    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.fixture
def slurm_shims(tmp_path):
    """A bin dir (prepend it to PATH) whose ``srun`` starts ``--ntasks`` local
    processes with the variables srun sets (SLURM_PROCID, SLURM_LOCALID,
    SLURM_NTASKS, SLURM_NODELIST, ...) and whose ``scontrol show hostnames``
    names this machine; their arguments go to ``<bin>/{srun,scontrol}.args``."""
    bin_dir = tmp_path / 'slurm_bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(f"""#!/usr/bin/env bash
echo "$@" > {bin_dir}/srun.args
ntasks=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -p|-J|-n|-N) shift 2 ;;
        --ntasks=*) ntasks=${{1#--ntasks=}}; shift ;;
        -*) shift ;;
        *) break ;;
    esac
done
pids=()
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NTASKS=$ntasks SLURM_NNODES=1 SLURM_NODEID=0 \
    SLURM_NODELIST=testnode[01] SLURM_JOB_ID=4242 SLURM_STEP_ID=0 "$@" &
    pids+=($!)
done
rc=0
for p in "${{pids[@]}}"; do wait "$p" || rc=$?; done
exit $rc
""")
    (bin_dir / 'scontrol').write_text(f"""#!/usr/bin/env bash
echo "$@" >> {bin_dir}/scontrol.args
if [[ "$1 $2" == "show hostnames" || "$1 $2" == "show hostname" ]]; then
    echo 127.0.0.1
    exit 0
fi
echo "scontrol shim: unsupported: $*" >&2
exit 1
""")
    for f in ('srun', 'scontrol'):
        (bin_dir / f).chmod(0o755)
    return bin_dir


def load_tool(path):
    """The module of tools/<path>, to call its functions (e.g. main(argv))."""
    import importlib.util
    import re
    name = 'tool_' + re.sub(r'\W', '_', path)
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
