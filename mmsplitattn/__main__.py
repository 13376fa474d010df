"""``python -m mmsplitattn``: print the environment the package runs in.

Exits with status 1 when mmcv's compiled ops are missing (mmdet's RoIAlign and
NMS need them), and warns when torch sees a GPU but mmcv was built without its
CUDA ops (every GPU run of a detector would then fail at the first NMS), or a
GPU whose architecture this torch build has no kernels for (docs/install.md).
"""
import platform
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple


def mmcv_ops_status() -> Dict[str, Optional[str]]:
    """What mmcv's compiled extension offers.

    Returns a dict with ``compiled`` ('yes' or None), ``cuda`` (the CUDA
    version mmcv's ops were compiled with, or None for CPU-only ops),
    ``compiler`` (the C++ compiler that built them) and ``error`` (why the
    ops could not be loaded, or None).
    """
    status = dict(compiled=None, cuda=None, compiler=None, error=None)
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
        import mmcv._ext  # noqa: F401  (the compiled library itself)
    except Exception as e:  # noqa: BLE001 - a report, not a failure
        status['error'] = f'{type(e).__name__}: {e}'
        return status
    status['compiled'] = 'yes'
    status['compiler'] = get_compiler_version()
    cuda = get_compiling_cuda_version()
    status['cuda'] = None if cuda in ('', 'not available') else cuda
    return status


def describe_mmcv_ops(status: Dict[str, Optional[str]], gpus: int) -> Tuple[str, List[str]]:
    """One line for the report and the warnings that go with it."""
    if not status['compiled']:
        return (f'MISSING ({status["error"]})',
                ['mmcv was installed without its compiled ops: build it with '
                 'MMCV_WITH_OPS=1 (tools/setup_env.sh, docs/install.md)'])
    if status['cuda']:
        return f'compiled, CPU + CUDA {status["cuda"]} ({status["compiler"]})', []
    warnings = []
    if gpus:
        warnings.append(f'torch sees {gpus} GPU(s) but mmcv has CPU ops only: detectors '
                        'fail on the GPU; rebuild mmcv with nvcc on PATH and FORCE_CUDA=1 '
                        '(tools/setup_env.sh does, docs/install.md)')
    return f'compiled, CPU only, no CUDA ops ({status["compiler"]})', warnings


def arch_served(capability: Tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a GPU of compute ``capability`` (major, minor) runs the kernels of
    a torch built for ``arch_list`` (``torch.cuda.get_arch_list()``, e.g.
    ``['sm_75', 'sm_80', 'compute_90']``): a cubin ``sm_XY`` runs on X.Y and
    later minors of major X, PTX ``compute_XY`` on X.Y and later."""
    for arch in arch_list:
        match = re.fullmatch(r'(sm|compute)_(\d+)(\d)[a-z]?', arch)
        if not match:
            continue
        built = (int(match.group(2)), int(match.group(3)))
        if built <= tuple(capability) and (match.group(1) == 'compute'
                                           or built[0] == capability[0]):
            return True
    return False


def describe_gpu_archs(torch_version: str, arch_list: Sequence[str],
                       gpus: Sequence[Tuple[str, Tuple[int, int]]]) -> List[str]:
    """Warnings for the GPUs ``[(name, capability)]`` that torch has no kernels for."""
    return [f'GPU {i} ({name}) is sm_{cap[0]}{cap[1]}, but torch {torch_version} has kernels '
            f'for {" ".join(arch_list)} only: use a torch build for it (docs/install.md#gpus)'
            for i, (name, cap) in enumerate(gpus) if not arch_served(cap, arch_list)]


def collect_env() -> Tuple[List[Tuple[str, object]], List[str]]:
    """Return ([(name, value)] describing the software and devices, [warnings])."""
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    rows = [('Python', sys.version.split()[0]), ('Platform', platform.platform()),
            ('PyTorch', torch.__version__),
            ('PyTorch CUDA', torch.version.cuda or 'CPU-only build'),
            ('CUDA available', torch.cuda.is_available())]
    if gpus:
        rows.append(('GPUs', ', '.join(torch.cuda.get_device_name(i) for i in range(gpus))))
    for name in ('torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'timm'):
        try:
            rows.append((name, __import__(name).__version__))
        except Exception as e:  # noqa: BLE001 - report, do not fail
            rows.append((name, f'not available ({type(e).__name__}: {e})'))
    ops, warnings = describe_mmcv_ops(mmcv_ops_status(), gpus)
    rows.append(('mmcv ops', ops))
    warnings += describe_gpu_archs(
        torch.__version__, torch.cuda.get_arch_list(),
        [(torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
         for i in range(gpus)])
    import mmsplitattn
    from mmsplitattn.registry import MODELS
    rows.append(('mmsplitattn', mmsplitattn.__version__))
    rows.append(('registered', ', '.join(sorted(MODELS.module_dict))))
    return rows, warnings


def main() -> int:
    rows, warnings = collect_env()
    for name, value in rows:
        print(f'{name:>15}: {value}')
    for warning in warnings:
        print(f'WARNING: {warning}', file=sys.stderr)
    return 0 if mmcv_ops_status()['compiled'] else 1


if __name__ == '__main__':
    sys.exit(main())
