#!/usr/bin/env bash
# Distributed training through torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without CUDA the processes run on the CPU with the gloo backend.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/torchrun_launch.sh" "$2" train.py "$1" "${@:3}"
