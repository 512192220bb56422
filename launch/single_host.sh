#!/usr/bin/env bash
# Train on this machine's GPUs or on a single-host Cloud TPU VM (v4-8, v5litepod-8, ...):
# install the accelerator's build of jax (the '.[gpu]' or '.[tpu]' extra), check that jax sees
# the accelerator, then run `adarl-jax train` or `adarl-jax reproduce` with a config.
#
# usage: launch/single_host.sh gpu|tpu train|reproduce CONFIG WORKDIR [adarl-jax flags...]
#        launch/local_gpu.sh train|reproduce CONFIG WORKDIR [adarl-jax flags...]   (= gpu)
#        launch/tpu_vm.sh train|reproduce CONFIG WORKDIR [adarl-jax flags...]      (= tpu)
#   e.g. launch/local_gpu.sh train emodb runs/emodb --data ../shared/data/emodb --folds 0-4
#        launch/tpu_vm.sh reproduce paper runs/paper --corpus iemocap --data IEMOCAP_full_release
#        launch/tpu_vm.sh train emodb runs/emodb --data emodb --config.model.dtype=bfloat16
# env:   PYTHON (default python3; use a virtualenv's), SKIP_INSTALL=1 (jax[cuda12] or jax[tpu]
#        already installed), ADARL_DRY_RUN=1 (print the commands, run nothing)
# All visible GPUs (or all the VM's TPU chips) form one data-parallel mesh, so optim.batch_size
# must divide by their number (CUDA_VISIBLE_DEVICES=0 restricts a run to one GPU). Run the TPU
# form on the TPU VM itself (gcloud compute tpus tpu-vm ssh NAME --zone Z); several hosts:
# tpu_pod.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC1091  # common.sh, checked on its own
source "$here/common.sh"

platform=${1:-}
case $platform in
  gpu) hint="check nvidia-smi and the jax[cuda12] install" ;;
  tpu) hint="is this a TPU VM, and is another process holding the chips?" ;;
  *) usage ;;
esac
shift
check_train_args "$@"
command=$1 config=$2 workdir=$3
shift 3
python=${PYTHON:-python3}

[[ -n ${SKIP_INSTALL:-} ]] || run "$python" -m pip install -q -e "$(dirname "$here")[$platform]"
check="import jax, sys; d = jax.devices(); print(d)
sys.exit(d[0].platform != \"$platform\" and \"jax sees no ${platform^^}: $hint\")"
run "$python" -c "$check"
run "$python" -m adarl_jax.cli "$command" --config "$config" --workdir "$workdir" "$@"
