#!/usr/bin/env bash
# Bootstrap (idempotently) the Python environment mmsplitattn runs in.
#
#   bash tools/setup_env.sh          # -> .venv/ at the repository root
#
# Environment variables:
#   MMSPLITATTN_VENV   where the virtual environment lives (default: <repo>/.venv)
#   MMSPLITATTN_CACHE  where built wheels are kept (default: ~/.cache/mmsplitattn)
#   PYTHON             interpreter used to create the venv (default: python3.11)
#
# mmcv 2.1.0 has no prebuilt wheel for this torch, so it is compiled once (about
# 11 minutes on 2 cores) and the wheel is cached under a key made of the torch
# version and the Python tag: pip's own cache would hand back a wheel compiled
# against another torch.
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

TORCH_KEY="$("$PY" -c 'import sys, torch; print(f"torch{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$CACHE/mmcv-2.1.0/$TORCH_KEY"
if ! "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
    if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
        step "building mmcv 2.1.0 with ops against $TORCH_KEY (once per machine, ~11 min on 2 cores)"
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
    "${PIP[@]}" install -q --no-deps "$WHEELS"/mmcv-2.1.0-*.whl
fi

step "OpenMMLab: mmengine, mmdet 3.3.0, mmsegmentation 1.2.2, test tools"
"${PIP[@]}" install -q -r "$REQ/mminstall.txt" -r "$REQ/tests.txt" -c "$REQ/torch.txt" \
    -c "$REQ/runtime.txt" --find-links "$WHEELS"

step "mmsplitattn (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

step "checking the environment"
"$PY" -m mmsplitattn

rm -f "$VENV"/.mmsplitattn-setup-*
touch "$STAMP"
step "environment ready: $VENV"
