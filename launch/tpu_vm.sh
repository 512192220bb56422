#!/usr/bin/env bash
# Train on a single-host Cloud TPU VM (v4-8, v5litepod-8, ...): install the TPU build of jax
# (the '.[tpu]' extra), then run `adarl-jax train` or `adarl-jax reproduce` on all its chips.
#
# usage: launch/tpu_vm.sh train|reproduce CONFIG WORKDIR [adarl-jax flags...]
#   e.g. launch/tpu_vm.sh reproduce paper runs/paper --corpus iemocap --data IEMOCAP_full_release
#        launch/tpu_vm.sh train emodb runs/emodb --data emodb --config.model.dtype=bfloat16
# env:   PYTHON (default python3), SKIP_INSTALL=1 (jax[tpu] already installed),
#        ADARL_DRY_RUN=1 (print the commands, run nothing)
# Run it on the TPU VM itself (gcloud compute tpus tpu-vm ssh NAME --zone Z). All its chips form
# one data-parallel mesh: optim.batch_size must divide by their number. Several hosts: tpu_pod.sh.
set -euo pipefail

usage() { sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
run() { if [[ -n ${ADARL_DRY_RUN:-} ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }

[[ $# -ge 3 && $1 != -h && $1 != --help ]] || usage
command=$1 config=$2 workdir=$3
shift 3
[[ $command == train || $command == reproduce ]] || usage
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}

[[ -n ${SKIP_INSTALL:-} ]] || run "$python" -m pip install -q -e "${repo}[tpu]"
check='import jax, sys; d = jax.devices(); print(d)
sys.exit(d[0].platform != "tpu" and "jax sees no TPU: is this a TPU VM, and is another process holding the chips?")'
run "$python" -c "$check"
run "$python" -m adarl_jax.cli "$command" --config "$config" --workdir "$workdir" "$@"
