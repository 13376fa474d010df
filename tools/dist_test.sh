#!/usr/bin/env bash
# Distributed testing through torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without CUDA the processes run on the CPU with the gloo backend.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/torchrun_launch.sh" "$3" test.py "$1" "$2" "${@:4}"
