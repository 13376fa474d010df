#!/usr/bin/env bash
# Bootstrap (idempotently) the Python environment mmsplitattn runs in.
#
#   bash tools/setup_env.sh          # -> .venv/ at the repository root
#   bash tools/setup_env.sh --check  # only say whether .venv/ and its mmcv fit this machine
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
# compiled against another torch or without CUDA kernels. Every run, even one
# that finds the environment up to date, checks that the venv's mmcv was
# installed for this machine's key (about a second), so a venv made on a CPU
# login node gets the CUDA build on a GPU node. docs/install.md.
set -euo pipefail

MODE="${1:-install}"
[[ "$MODE" == install || "$MODE" == --check ]] || {
    echo "usage: bash tools/setup_env.sh [--check]" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(realpath -m "${MMSPLITATTN_VENV:-$ROOT/.venv}")"
CACHE="${MMSPLITATTN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmsplitattn}"
PYTHON="${PYTHON:-python3.11}"
REQ="$ROOT/requirements"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# Which cache entry the venv's mmcv came from: the architectures a CUDA build
# was compiled for are not visible from Python, so a venv moved to other GPUs
# is caught by this record.
MMCV_RECORD="$VENV/.mmsplitattn-mmcv-key"

step() { printf '\n[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
stop() { printf 'setup_env.sh: %s\n' "$*" >&2; exit 1; }

# Everything that decides the environment's contents goes into the stamp, so a
# change to any requirement file or to setup.py reinstalls them. What depends on
# the machine (mmcv's ops) is checked on every run instead: machine_key, mmcv_fits.
stamp_of() { cat "$REQ"/*.txt "$ROOT/setup.py" "$0" | sha256sum | cut -c1-16; }
STAMP="$VENV/.mmsplitattn-setup-$(stamp_of)"
CURRENT=0
[[ -f "$STAMP" && -x "$PY" ]] && CURRENT=1
if [[ "$MODE" == --check && "$CURRENT" == 0 ]]; then
    stop "$VENV is not set up for this checkout's requirements: run bash tools/setup_env.sh"
fi

install_base() {
    if [[ ! -x "$PY" ]]; then
        step "creating virtual environment $VENV with $PYTHON"
        "$PYTHON" -m venv "$VENV"
    fi
    step "build tools (setuptools < 81 keeps pkg_resources for mmcv)"
    "${PIP[@]}" install -q --upgrade pip
    "${PIP[@]}" install -q -r "$REQ/build.txt"
    step "torch 2.14.1 + torchvision 0.29.1 (installed together)"
    "${PIP[@]}" install -q -r "$REQ/torch.txt"
    step "runtime libraries (numpy, opencv, pycocotools, cityscapesscripts, timm, ...)"
    "${PIP[@]}" install -q -r "$REQ/runtime.txt" -c "$REQ/torch.txt"
}

# mmcv's compiled ops come in two kinds: CPU-only, and with CUDA kernels. The
# CUDA kind is wanted where torch sees a GPU and nvcc is on PATH (or FORCE_CUDA=1
# says so: a build node without a GPU), for TORCH_CUDA_ARCH_LIST (default: the
# capabilities of the visible GPUs). Sets TORCH_CUDA (torch's CUDA build), OPS
# (cpu|cuda), TORCH_KEY (the cache key of the mmcv this machine wants), WHEELS
# (its cache folder) and INSTALLED (the version and ops kind of the venv's mmcv:
# 2.1.0:cpu, 2.1.0:cuda, or none).
machine_key() {
    local torch_ver gpus gpu_archs pytag ops_key
    read -r torch_ver TORCH_CUDA gpus gpu_archs pytag INSTALLED < <("$PY" - <<'PYEOF'
import sys
import warnings

import torch

warnings.simplefilter('ignore')
n = torch.cuda.device_count() if torch.cuda.is_available() else 0
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i) for i in range(n)})
try:  # the compiled library alone: importing mmcv.ops would cost another second
    import mmcv
    import mmcv._ext
    cuda = mmcv._ext.get_compiling_cuda_version()
    installed = f'{mmcv.__version__}:{"cpu" if cuda in ("", "not available") else "cuda"}'
except Exception:  # not installed, or installed without its compiled ops
    installed = 'none'
print(torch.__version__, torch.version.cuda or 'none', n, ';'.join(archs) or '-',
      f'py{sys.version_info[0]}{sys.version_info[1]}', installed)
PYEOF
)
    if [[ "${FORCE_CUDA:-0}" == 1 || ( "$gpus" -gt 0 && -n "$(command -v nvcc || true)" ) ]]; then
        [[ "$TORCH_CUDA" != none ]] || stop "FORCE_CUDA=1 but torch $torch_ver is a CPU build"
        OPS=cuda
        export FORCE_CUDA=1
        export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-${gpu_archs//-/}}"
        [[ -n "$TORCH_CUDA_ARCH_LIST" ]] ||
            stop "FORCE_CUDA=1 without a visible GPU: set TORCH_CUDA_ARCH_LIST (e.g. '8.0;8.6')"
        ops_key="cudaops-sm${TORCH_CUDA_ARCH_LIST//[;. ]/_}"
    else
        OPS=cpu
        ops_key=cpuops
        if [[ "$gpus" -gt 0 ]]; then
            echo "WARNING: torch sees $gpus GPU(s) but nvcc is not on PATH: building mmcv with" \
                 "CPU ops only, and detectors will fail on the GPU. Install the CUDA $TORCH_CUDA" \
                 "toolkit (nvcc) and run this again, or set FORCE_CUDA=1 with CUDA_HOME." >&2
        fi
    fi
    TORCH_KEY="torch$torch_ver-cu$TORCH_CUDA-$ops_key-$pytag"
    WHEELS="$CACHE/mmcv-2.1.0/$TORCH_KEY"
}

# The installed mmcv is kept only if it is 2.1.0 with ops of the kind wanted here,
# installed from this machine's cache entry.
mmcv_fits() {
    [[ "$INSTALLED" == "2.1.0:$OPS" && -f "$MMCV_RECORD" ]] &&
        [[ "$(cat "$MMCV_RECORD")" == "$TORCH_KEY" ]]
}
mmcv_mismatch() {
    local record="none"
    [[ -f "$MMCV_RECORD" ]] && record="$(cat "$MMCV_RECORD")"
    echo "the venv's mmcv ($INSTALLED, installed for $record) does not fit this machine," \
         "which wants mmcv 2.1.0 with $OPS ops for $TORCH_KEY"
}
cached_wheel() {
    local wheel
    for wheel in "$WHEELS"/mmcv-2.1.0-*.whl; do
        [[ -f "$wheel" ]] && echo "$wheel" && return 0
    done
    return 0
}
# torch's cpp_extension looks for the CUDA toolkit the same way.
nvcc_path() {
    local home="${CUDA_HOME:-${CUDA_PATH:-}}"
    if [[ -n "$home" ]]; then
        [[ -x "$home/bin/nvcc" ]] && echo "$home/bin/nvcc"
    elif command -v nvcc >/dev/null; then
        command -v nvcc
    elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
        echo /usr/local/cuda/bin/nvcc
    fi
    return 0
}

build_mmcv() {
    step "building mmcv 2.1.0 with $OPS ops against $TORCH_KEY" \
         "(once per machine, ~11 min on 2 cores)"
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
}

install_mmcv() {
    local wheel
    wheel="$(cached_wheel)"
    if [[ -n "$wheel" ]]; then
        step "using cached mmcv wheel $wheel"
    else
        [[ "$OPS" == cpu || -n "$(nvcc_path)" ]] || stop "$(mmcv_mismatch); building its CUDA" \
            "ops needs nvcc, and none was found (CUDA_HOME='${CUDA_HOME:-}', PATH). Install the" \
            "CUDA $TORCH_CUDA toolkit and put its nvcc on PATH (or set CUDA_HOME)," \
            "or put an mmcv 2.1.0 wheel built with CUDA ops for this torch into $WHEELS/," \
            "then run bash tools/setup_env.sh again; FORCE_CUDA=0 keeps CPU ops (docs/install.md)"
        build_mmcv
        wheel="$(cached_wheel)"
    fi
    "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
    echo "$TORCH_KEY" > "$MMCV_RECORD"
}

install_rest() {
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
}

[[ "$CURRENT" == 1 ]] || install_base
machine_key
REINSTALLED=0
if mmcv_fits; then
    if [[ "$CURRENT" == 1 ]]; then
        step "environment up to date: $VENV (mmcv: $TORCH_KEY)"
        exit 0
    fi
elif [[ "$MODE" == --check ]]; then
    if [[ -n "$(cached_wheel)" ]]; then
        stop "$(mmcv_mismatch): bash tools/setup_env.sh installs it from $(cached_wheel)"
    fi
    stop "$(mmcv_mismatch): bash tools/setup_env.sh builds it (~11 min on 2 cores with CPU" \
         "ops, longer with CUDA ops) into $WHEELS/"
else
    [[ "$INSTALLED" == none ]] || step "reinstalling mmcv: $(mmcv_mismatch)"
    install_mmcv
    REINSTALLED=1
fi

[[ "$CURRENT" == 1 ]] || install_rest
# mmcv imports mmengine, so the wheel just installed can be checked only now.
if [[ "$REINSTALLED" == 1 ]]; then
    machine_key
    mmcv_fits || stop "the venv's mmcv is $INSTALLED after installing $(cached_wheel), not" \
        "2.1.0:$OPS: delete $WHEELS/ and run bash tools/setup_env.sh again to build it"
fi

step "checking the environment"
"$PY" -m mmsplitattn

if [[ "$CURRENT" == 0 ]]; then
    rm -f "$VENV"/.mmsplitattn-setup-*
    touch "$STAMP"
fi
step "environment ready: $VENV"
