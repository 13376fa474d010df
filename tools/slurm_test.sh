#!/usr/bin/env bash
# Testing on a slurm cluster.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# Without CUDA, GPUS is the number of processes (gloo backend); MASTER_PORT
# (default 29500) and MASTER_ADDR (default: the first host of the job) as MMEngine.
set -euo pipefail
if [[ $# -lt 4 ]]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/srun_launch.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"
