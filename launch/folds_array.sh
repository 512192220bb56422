#!/usr/bin/env bash
#SBATCH --job-name=adarl-fold
#SBATCH --array=0-9
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --time=12:00:00
# One LOSO fold per task of a SLURM job array (`--folds $SLURM_ARRAY_TASK_ID`), all into one
# workdir; `adarl-jax report WORKDIR` then merges the finished folds into results.json.
#
# usage: sbatch [--array=0-9] launch/folds_array.sh train|reproduce CONFIG WORKDIR [adarl-jax flags...]
#   e.g. adarl-jax prepare --config emodb --data /shared/emodb --workdir /shared/runs/emodb
#        jid=$(sbatch --parsable launch/folds_array.sh reproduce emodb /shared/runs/emodb --data /shared/emodb)
#        sbatch --dependency=afterany:"$jid" --wrap "adarl-jax report /shared/runs/emodb"
# env:   ADARL_VENV (a virtualenv to activate first), ADARL_DRY_RUN=1 (print, run nothing)
# `reproduce` trains the fold for all three variants; a rerun resumes each task where it stopped.
# WORKDIR must be on storage all tasks share; `prepare` first spares each task the spectrograms.
set -euo pipefail

# sbatch runs a copy of this file from SLURM's spool: common.sh is then found from the
# directory the job was submitted from (the repository root, as in the examples above).
for dir in "$(dirname "${BASH_SOURCE[0]}")" "${SLURM_SUBMIT_DIR:-.}/launch"; do
  if [[ -f $dir/common.sh ]]; then
    # shellcheck disable=SC1091  # common.sh, checked on its own
    source "$dir/common.sh"
    break
  fi
done
if ! declare -F check_train_args >/dev/null; then
  echo "folds_array.sh: launch/common.sh not found: submit from the repository root" >&2
  exit 2
fi

check_train_args "$@"
command=$1 config=$2 workdir=$3
shift 3
if [[ -z ${SLURM_ARRAY_TASK_ID:-} ]]; then
  echo "folds_array.sh: SLURM_ARRAY_TASK_ID is not set: submit with sbatch --array=0-9" >&2
  exit 2
fi
if [[ -n ${ADARL_VENV:-} ]]; then
  # shellcheck disable=SC1091
  source "$ADARL_VENV/bin/activate"
fi

# --no-report: a task's report would cover its own fold alone; the report job writes the one report
run adarl-jax "$command" --config "$config" --workdir "$workdir" --folds "$SLURM_ARRAY_TASK_ID" \
  --no-progress --no-report "$@"
