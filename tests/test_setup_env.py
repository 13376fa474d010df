"""tools/setup_env.sh checks the venv's mmcv against the machine on every run, and
`python -m mmsplitattn` warns about GPUs that mmcv's ops or torch's kernels do not serve.

The script runs against a throwaway venv: a folder whose ``bin/python`` runs this
test interpreter (so torch and mmcv are the real ones) but only records ``python -m
pip ...`` instead of running it, with the stamp of this checkout (the pinned packages
count as installed) and a faked record of the cache key its mmcv was installed from.
Nothing is installed or built, and the real .venv is not touched.
"""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT

# A run that gets past the stamp starts python and imports torch and mmcv (2-9 s).
script_run = pytest.mark.slow
SCRIPT = Path(ROOT) / 'tools' / 'setup_env.sh'
PYTAG = f'py{sys.version_info[0]}{sys.version_info[1]}'
TORCH_CUDA = torch.version.cuda or 'none'
# What this (CPU) machine wants: CPU ops for this torch; the CPU login node's key.
CPU_KEY = f'torch{torch.__version__}-cu{TORCH_CUDA}-cpuops-{PYTAG}'
OTHER_TORCH_KEY = f'torch2.13.0+cu130-cu13.0-cpuops-{PYTAG}'
needs_cpu_machine = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the machine wants CUDA ops: the CPU key does not apply')
needs_cuda_torch = pytest.mark.skipif(
    torch.version.cuda is None, reason='FORCE_CUDA=1 needs a CUDA build of torch')


def stamp() -> str:
    """The script's stamp: a hash of the requirement files, setup.py and itself."""
    files = sorted((Path(ROOT) / 'requirements').glob('*.txt'))
    files += [Path(ROOT) / 'setup.py', SCRIPT]
    return hashlib.sha256(b''.join(f.read_bytes() for f in files)).hexdigest()[:16]


@pytest.fixture
def venv(tmp_path):
    """A set-up venv (current stamp) whose mmcv was installed for CPU_KEY."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(f"""#!/usr/bin/env bash
if [[ "$1 $2" == "-m pip" ]]; then echo "${{@:3}}" >> "{venv}/pip.log"; exit 0; fi
exec "{sys.executable}" "$@"
""")
    python.chmod(0o755)
    (venv / f'.mmsplitattn-setup-{stamp()}').touch()
    (venv / '.mmsplitattn-mmcv-key').write_text(CPU_KEY + '\n')
    return venv


def run_setup(venv, cache, *args, **env):
    full_env = {k: v for k, v in os.environ.items()
                if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'CUDA_HOME', 'CUDA_PATH')}
    full_env.update(MMSPLITATTN_VENV=str(venv), MMSPLITATTN_CACHE=str(cache), **env)
    return subprocess.run(['bash', str(SCRIPT), *args], env=full_env, capture_output=True,
                          text=True, timeout=600)


def pip_calls(venv):
    log = venv / 'pip.log'
    return log.read_text().splitlines() if log.exists() else []


def cached_wheel(cache, key):
    """An (empty) mmcv wheel in the cache entry of ``key``: the pip stub installs nothing."""
    folder = cache / 'mmcv-2.1.0' / key
    folder.mkdir(parents=True)
    wheel = folder / f'mmcv-2.1.0-cp{PYTAG[2:]}-cp{PYTAG[2:]}-linux_x86_64.whl'
    wheel.touch()
    return wheel


@script_run
@needs_cpu_machine
def test_a_venv_that_fits_is_up_to_date_without_installing(venv, tmp_path):
    proc = run_setup(venv, tmp_path / 'cache')
    assert proc.returncode == 0, proc.stderr
    assert f'environment up to date: {venv} (mmcv: {CPU_KEY})' in proc.stdout
    assert pip_calls(venv) == []


@script_run
@needs_cpu_machine
def test_check_names_the_mismatch_in_the_recorded_key(venv, tmp_path):
    """The stamp is current, but the venv's mmcv was installed for another torch."""
    (venv / '.mmsplitattn-mmcv-key').write_text(OTHER_TORCH_KEY + '\n')
    proc = run_setup(venv, tmp_path / 'cache', '--check')
    assert proc.returncode == 1
    assert (f"the venv's mmcv (2.1.0:cpu, installed for {OTHER_TORCH_KEY}) does not fit this "
            f'machine, which wants mmcv 2.1.0 with cpu ops for {CPU_KEY}') in proc.stderr
    assert 'bash tools/setup_env.sh builds it' in proc.stderr
    assert pip_calls(venv) == []


@script_run
@needs_cpu_machine
def test_a_mismatched_mmcv_is_reinstalled_from_the_cache(venv, tmp_path):
    (venv / '.mmsplitattn-mmcv-key').write_text(OTHER_TORCH_KEY + '\n')
    wheel = cached_wheel(tmp_path / 'cache', CPU_KEY)
    proc = run_setup(venv, tmp_path / 'cache')
    assert proc.returncode == 0, proc.stderr
    assert 'reinstalling mmcv' in proc.stdout and f'using cached mmcv wheel {wheel}' in proc.stdout
    assert pip_calls(venv) == [f'--disable-pip-version-check install -q --no-deps '
                               f'--force-reinstall {wheel}']
    assert (venv / '.mmsplitattn-mmcv-key').read_text().strip() == CPU_KEY
    assert 'environment ready' in proc.stdout  # after `python -m mmsplitattn` passed


@script_run
@needs_cuda_torch
def test_gpu_node_after_a_cpu_login_node_stops_without_nvcc(venv, tmp_path):
    """CPU ops in the venv, CUDA ops wanted (FORCE_CUDA=1), no cached wheel, no toolkit."""
    proc = run_setup(venv, tmp_path / 'cache', FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.0',
                     CUDA_HOME=str(tmp_path / 'no-cuda'))
    cuda_key = f'torch{torch.__version__}-cu{TORCH_CUDA}-cudaops-sm8_0-{PYTAG}'
    assert proc.returncode == 1
    assert 'up to date' not in proc.stdout
    assert f'which wants mmcv 2.1.0 with cuda ops for {cuda_key}' in proc.stderr
    assert 'needs nvcc' in proc.stderr
    assert str(tmp_path / 'cache' / 'mmcv-2.1.0' / cuda_key) in proc.stderr
    assert pip_calls(venv) == []
    assert (venv / '.mmsplitattn-mmcv-key').read_text().strip() == CPU_KEY


@script_run
@needs_cuda_torch
def test_check_finds_the_cached_cuda_build(venv, tmp_path):
    cuda_key = f'torch{torch.__version__}-cu{TORCH_CUDA}-cudaops-sm8_0_8_6-{PYTAG}'
    wheel = cached_wheel(tmp_path / 'cache', cuda_key)
    proc = run_setup(venv, tmp_path / 'cache', '--check', FORCE_CUDA='1',
                     TORCH_CUDA_ARCH_LIST='8.0;8.6')
    assert proc.returncode == 1
    assert f'bash tools/setup_env.sh installs it from {wheel}' in proc.stderr
    assert pip_calls(venv) == []


def test_check_of_a_venv_never_set_up(tmp_path):
    proc = run_setup(tmp_path / 'venv', tmp_path / 'cache', '--check')
    assert proc.returncode == 1
    assert 'is not set up' in proc.stderr and 'run bash tools/setup_env.sh' in proc.stderr
    assert not (tmp_path / 'venv').exists()


# ---------------------------------------------------------------- python -m mmsplitattn


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch sees one GPU of capability ``fake_gpu.capability`` (default 8.0)."""
    class FakeGPU:
        capability = (8, 0)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda i=0: 'Fake GPU')
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i=0: FakeGPU.capability)
    monkeypatch.setattr(torch.cuda, 'get_arch_list', lambda: ['sm_75', 'sm_80', 'sm_90'])
    return FakeGPU


def test_environment_report_warns_when_a_gpu_meets_cpu_only_mmcv(fake_gpu, capsys):
    from mmcv.ops import get_compiling_cuda_version

    from mmsplitattn.__main__ import main
    assert main() == 0
    captured = capsys.readouterr()
    assert 'GPUs: Fake GPU' in captured.out
    if get_compiling_cuda_version() in ('', 'not available'):
        assert ('WARNING: torch sees 1 GPU(s) but mmcv has CPU ops only: detectors fail on '
                'the GPU') in captured.err
    else:
        assert 'mmcv has CPU ops only' not in captured.err
    assert 'has kernels for' not in captured.err  # sm_80 is served


def test_environment_report_names_a_gpu_torch_has_no_kernels_for(fake_gpu, capsys):
    from mmsplitattn.__main__ import main
    fake_gpu.capability = (7, 0)  # V100
    assert main() == 0
    assert ('GPU 0 (Fake GPU) is sm_70, but torch %s has kernels for sm_75 sm_80 sm_90 only: '
            'use a torch build for it (docs/install.md#gpus)' % torch.__version__
            in capsys.readouterr().err)


@pytest.mark.parametrize('capability,arch_list,served', [
    ((7, 0), ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120'], False),  # V100
    ((6, 0), ['sm_75', 'sm_80'], False),                                       # P100
    ((8, 6), ['sm_75', 'sm_80'], True),        # an sm_80 cubin runs on 8.6
    ((8, 9), ['sm_75', 'sm_86', 'sm_90'], True),
    ((9, 0), ['sm_75', 'sm_86'], False),       # no cubin of major 9, no PTX
    ((12, 0), ['sm_90', 'compute_90'], True),  # PTX is compiled for newer GPUs
    ((10, 0), ['sm_90a', 'sm_100a'], True),
    ((7, 0), ['sm_50', 'sm_60', 'sm_70', 'sm_75'], True),
])
def test_arch_served(capability, arch_list, served):
    from mmsplitattn.__main__ import arch_served
    assert arch_served(capability, arch_list) is served
