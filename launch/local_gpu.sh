#!/usr/bin/env bash
# Train on this machine's GPUs: install the CUDA build of jax (the '.[gpu]' extra), then run
# `adarl-jax train` or `adarl-jax reproduce` with a config.
#
# usage: launch/local_gpu.sh train|reproduce CONFIG WORKDIR [adarl-jax flags...]
#   e.g. launch/local_gpu.sh train emodb runs/emodb --data ../shared/data/emodb --folds 0-4
#        launch/local_gpu.sh reproduce paper runs/paper --corpus iemocap --data IEMOCAP_full_release
# env:   PYTHON (default python3; use a virtualenv's), SKIP_INSTALL=1 (jax[cuda12] already
#        installed), ADARL_DRY_RUN=1 (print the commands, run nothing)
# All visible GPUs form one data-parallel mesh, so optim.batch_size must divide by their number
# (CUDA_VISIBLE_DEVICES=0 restricts the run to one GPU).
set -euo pipefail

usage() { sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
run() { if [[ -n ${ADARL_DRY_RUN:-} ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }

[[ $# -ge 3 && $1 != -h && $1 != --help ]] || usage
command=$1 config=$2 workdir=$3
shift 3
[[ $command == train || $command == reproduce ]] || usage
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

[[ -n ${SKIP_INSTALL:-} ]] || run "$python" -m pip install -q -e "${repo}[gpu]"
check='import jax, sys; d = jax.devices(); print(d)
sys.exit(d[0].platform != "gpu" and "jax sees no GPU: check nvidia-smi and the jax[cuda12] install")'
run "$python" -c "$check"
run "$python" -m adarl_jax.cli "$command" --config "$config" --workdir "$workdir" "$@"
