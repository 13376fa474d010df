#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run a tools/ script under torchrun.
#   bash tools/torchrun_launch.sh NPROC_PER_NODE SCRIPT [script args...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. PYTHON overrides the
# interpreter (default: the project's .venv if it exists, else python).
set -euo pipefail
NPROC=$1
SCRIPT=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$([[ -x "$ROOT/.venv/bin/python" ]] && echo "$ROOT/.venv/bin/python" || echo python)}

if ! [[ "$NPROC" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: GPUS must be the number of processes per node (1, 2, ...), got '$NPROC'" >&2
    exit 2
fi
# torchrun's rendezvous binds PORT on the first node: name a busy one before it fails
# (a 2 s bound on the probe: an unreachable MASTER_ADDR is torchrun's to report)
if [[ "$NODE_RANK" == 0 ]] && timeout 2 bash -c "exec 3<>/dev/tcp/$MASTER_ADDR/$PORT" \
        2>/dev/null; then
    echo "error: port $PORT on $MASTER_ADDR is in use (another run?): set PORT to a free" \
         "one, e.g. PORT=$((PORT + 1)) in front of the command$([[ "$NNODES" != 1 ]] && echo \
         ", or, on a node other than the first, set NODE_RANK")" >&2
    exit 2
fi

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/$SCRIPT" "${@:3}" --launcher pytorch
