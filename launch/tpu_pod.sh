#!/usr/bin/env bash
# Train on a multi-host Cloud TPU pod slice (v4-32, v5p-64, ...): run from your workstation; the
# same command runs on every worker through `gcloud compute tpus tpu-vm ssh --worker=all`.
#
# usage: launch/tpu_pod.sh TPU_NAME ZONE train|reproduce CONFIG WORKDIR [adarl-jax flags...]
#   e.g. launch/tpu_pod.sh my-v4-32 us-central2-b reproduce paper /mnt/shared/runs/paper \
#          --corpus iemocap --data /mnt/shared/IEMOCAP_full_release
# env:   REMOTE_DIR (this repository on every worker, default ~/adarl-jax), SKIP_INSTALL=1,
#        ADARL_DRY_RUN=1 (print the gcloud command, run nothing)
# WORKDIR and the data must be on storage all workers share (NFS/Filestore, a gcsfuse mount):
# orbax writes each checkpoint from all workers together and worker 0 writes the results.
# Each worker runs `adarl-jax ... --coordinator auto`: jax.distributed.initialize() reads the
# worker count, its own index and the coordinator from the TPU metadata (no --num-processes or
# --process-id). The mesh spans all chips of all workers; optim.batch_size is the global batch.
set -euo pipefail

# shellcheck disable=SC1091  # common.sh, checked on its own
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -ge 2 && $1 != -h && $1 != --help ]] || usage
check_train_args "${@:3}"
name=$1 zone=$2 command=$3 config=$4 workdir=$5
shift 5

remote="cd ${REMOTE_DIR:-adarl-jax} && "
[[ -n ${SKIP_INSTALL:-} ]] || remote+="python3 -m pip install -q -e '.[tpu]' && "
remote+="python3 -m adarl_jax.cli $(printf '%q ' "$command" --config "$config" --workdir "$workdir" "$@")--coordinator auto"
run gcloud compute tpus tpu-vm ssh "$name" --zone "$zone" --worker=all --command "$remote"
