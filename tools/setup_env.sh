#!/usr/bin/env bash
# Bootstrap (idempotently) the Python environment mmsplitattn runs in.
#
#   bash tools/setup_env.sh          # -> .venv/ at the repository root
#
# Environment variables:
#   MMSPLITATTN_VENV   where the virtual environment lives (default: <repo>/.venv)
#   MMSPLITATTN_CACHE  where built wheels are kept (default: ~/.cache/mmsplitattn)
#   PYTHON             interpreter used to create the venv (default: python3.11)
#   FORCE_CUDA=1       build mmcv's CUDA ops even where no GPU is visible
#   TORCH_CUDA_ARCH_LIST  CUDA architectures for them (default: the visible GPUs')
#   MAX_JOBS           parallel compile jobs for mmcv (default: all cores)
#
# mmcv 2.1.0 has no prebuilt wheel for this torch, so it is compiled once (about
# 11 minutes on 2 cores for CPU ops) and the wheel is cached under a key made of
# the torch version, torch's CUDA build, the kind of ops (cpuops, or cudaops and
# the architectures) and the Python tag: pip's own cache would hand back a wheel
# compiled against another torch or without CUDA kernels. docs/install.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(realpath -m "${MMSPLITATTN_VENV:-$ROOT/.venv}")"
CACHE="${MMSPLITATTN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmsplitattn}"
PYTHON="${PYTHON:-python3.11}"
REQ="$ROOT/requirements"

step() { printf '\n[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Everything that decides the environment's contents goes into the stamp, so a
# change to any requirement file or to setup.py reinstalls, and nothing else does.
stamp_of() { cat "$REQ"/*.txt "$ROOT/setup.py" "$0" | sha256sum | cut -c1-16; }
STAMP="$VENV/.mmsplitattn-setup-$(stamp_of)"
if [[ -f "$STAMP" ]]; then
    step "environment up to date: $VENV"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

step "build tools (setuptools < 81 keeps pkg_resources for mmcv)"
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -r "$REQ/build.txt"

step "torch 2.14.1 + torchvision 0.29.1 (installed together)"
"${PIP[@]}" install -q -r "$REQ/torch.txt"

step "runtime libraries (numpy, opencv, pycocotools, cityscapesscripts, timm, ...)"
"${PIP[@]}" install -q -r "$REQ/runtime.txt" -c "$REQ/torch.txt"

# mmcv's compiled ops come in two kinds: CPU-only, and with CUDA kernels. The
# CUDA kind is built where torch sees a GPU and nvcc is on PATH (or FORCE_CUDA=1
# says so: a build node without a GPU), for TORCH_CUDA_ARCH_LIST (default: the
# capabilities of the visible GPUs). The wheel cache is keyed on everything that
# makes two builds differ, so a CPU-only mmcv is never reused on a GPU machine.
read -r TORCH_VER TORCH_CUDA CUDA_GPUS GPU_ARCHS PYTAG < <("$PY" - <<'PYEOF'
import sys, torch
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i) for i in range(n)})
print(torch.__version__, torch.version.cuda or 'none', n, ';'.join(archs) or '-',
      f'py{sys.version_info[0]}{sys.version_info[1]}')
PYEOF
)
if [[ "${FORCE_CUDA:-0}" == 1 || ( "$CUDA_GPUS" -gt 0 && -n "$(command -v nvcc || true)" ) ]]; then
    [[ "$TORCH_CUDA" != none ]] || { echo "FORCE_CUDA=1 but torch $TORCH_VER is a CPU build" >&2; exit 1; }
    OPS=cuda
    export FORCE_CUDA=1
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-${GPU_ARCHS//-/}}"
    [[ -n "$TORCH_CUDA_ARCH_LIST" ]] || { echo "FORCE_CUDA=1 without a visible GPU: set TORCH_CUDA_ARCH_LIST (e.g. '8.0;8.6')" >&2; exit 1; }
    OPS_KEY="cudaops-sm${TORCH_CUDA_ARCH_LIST//[;. ]/_}"
else
    OPS=cpu
    OPS_KEY=cpuops
    if [[ "$CUDA_GPUS" -gt 0 ]]; then
        echo "WARNING: torch sees $CUDA_GPUS GPU(s) but nvcc is not on PATH: building mmcv with" \
             "CPU ops only, and detectors will fail on the GPU. Install the CUDA $TORCH_CUDA" \
             "toolkit (nvcc) and run this again, or set FORCE_CUDA=1 with CUDA_HOME." >&2
    fi
fi
TORCH_KEY="torch$TORCH_VER-cu$TORCH_CUDA-$OPS_KEY-$PYTAG"
WHEELS="$CACHE/mmcv-2.1.0/$TORCH_KEY"
# Which cache entry the venv's mmcv came from: the architectures a CUDA build
# was compiled for are not visible from Python, so a venv moved to other GPUs
# is caught by this record.
MMCV_RECORD="$VENV/.mmsplitattn-mmcv-key"
# The installed mmcv is kept only if it is 2.1.0 with ops of the kind wanted here,
# installed from this machine's cache entry.
mmcv_fits() {
    [[ -f "$MMCV_RECORD" && "$(cat "$MMCV_RECORD")" == "$TORCH_KEY" ]] || return 1
    "$PY" - "$OPS" <<'PYEOF' 2>/dev/null
import sys, mmcv
from mmcv.ops import get_compiling_cuda_version
assert mmcv.__version__ == '2.1.0'
has_cuda = get_compiling_cuda_version() not in ('not available', '')
assert has_cuda == (sys.argv[1] == 'cuda')
PYEOF
}
if ! mmcv_fits; then
    if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
        step "building mmcv 2.1.0 with $OPS ops against $TORCH_KEY (once per machine, ~11 min on 2 cores)"
        mkdir -p "$WHEELS"
        tmp="$(mktemp -d "$WHEELS/.build.XXXX")"
        trap 'rm -rf "$tmp"' EXIT
        # Build into a temporary folder so an interrupted build leaves no
        # half-written wheel. torch >= 2.10 headers need C++20, while mmcv
        # 2.1.0's setup.py forces -std=c++14/17: patch the flag in the sdist.
        "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
            -d "$tmp" mmcv==2.1.0
        tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
        sed -i "s/-std=c++1[47]/-std=c++20/g" "$tmp/mmcv-2.1.0/setup.py"
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir -w "$tmp" \
            "$tmp/mmcv-2.1.0"
        mv "$tmp"/mmcv-2.1.0-*.whl "$WHEELS"/
        rm -rf "$tmp"
        trap - EXIT
    else
        step "using cached mmcv wheel from $WHEELS"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEELS"/mmcv-2.1.0-*.whl
    echo "$TORCH_KEY" > "$MMCV_RECORD"
fi

step "OpenMMLab: mmengine, mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, test tools"
# -c build.txt: nothing may take setuptools out of the range mmcv and pip need.
"${PIP[@]}" install -q -r "$REQ/mminstall.txt" -r "$REQ/tests.txt" -c "$REQ/torch.txt" \
    -c "$REQ/runtime.txt" -c "$REQ/build.txt" --find-links "$WHEELS"
# openmim without its dependency opendatalab, whose openxlab pins setuptools~=60.2
# (and old requests/rich/tqdm): that setuptools has no PEP 660 hook, and pip then
# refuses the editable install below. mim only shells out to opendatalab's `odl`
# for `mim download --dataset`. Venvs set up before this get them removed.
"${PIP[@]}" uninstall -q -y openxlab opendatalab 2>/dev/null || true
"${PIP[@]}" install -q --no-deps -r "$REQ/mim.txt"

step "mmsplitattn (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

step "checking the environment"
"$PY" -m mmsplitattn

rm -f "$VENV"/.mmsplitattn-setup-*
touch "$STAMP"
step "environment ready: $VENV"
