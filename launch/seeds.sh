#!/usr/bin/env bash
# The headline figures over seeds: `adarl-jax reproduce` once a seed (WORKDIR/seed_K, one job
# per seed x variant, ADARL_PARALLEL jobs at a time), then `adarl-jax seeds` writes
# WORKDIR/seeds.md and seeds.json (mean ± std per variant, adarl - backbone per seed, paired
# comparisons over speakers and seeds, and each
# variant's seed ensemble: utterance probabilities averaged over the seeds).
#
# usage: launch/seeds.sh WORKDIR SEEDS [adarl-jax reproduce flags...]
#   e.g. launch/seeds.sh runs/quick_seeds 0,1,2 --data ../shared/data/emodb
# env:   ADARL_VARIANTS (default backbone,domain_invariant,adarl)
#        ADARL_PARALLEL (jobs at once, default 1; on a small CPU, N jobs pinned one core each
#        with taskset train faster in all than one job on N cores)
#        ADARL_DRY_RUN=1 (print the commands, run nothing)
# The openSMILE baselines are deterministic: they run in seed_<first> only. A rerun resumes
# every job where it stopped (finished folds are skipped).
set -euo pipefail

# shellcheck disable=SC1091  # common.sh, checked on its own
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ $# -ge 2 && $1 != -h && $1 != --help ]] || usage
workdir=$1 seeds=$2
shift 2
[[ $seeds =~ ^[0-9]+(,[0-9]+)*$ ]] || usage  # SEEDS: a comma list of integers
IFS=, read -r -a seed_list <<<"$seeds"
IFS=, read -r -a variants <<<"${ADARL_VARIANTS:-backbone,domain_invariant,adarl}"
parallel=${ADARL_PARALLEL:-1}
cores=$(nproc)

jobs=()
for seed in "${seed_list[@]}"; do
  for variant in "${variants[@]}"; do
    jobs+=("$seed $variant")
  done
done

run_job() {  # run_job LANE SEED VARIANT [flags...]
  local lane=$1 seed=$2 variant=$3
  shift 3
  local baselines=none pin=()
  [[ $seed == "${seed_list[0]}" && $variant == "${variants[0]}" ]] && baselines=egemaps,compare
  if [[ $parallel -gt 1 ]] && command -v taskset >/dev/null; then
    pin=(taskset -c $((lane % cores)))
  fi
  local cmd=("${pin[@]}" adarl-jax reproduce --workdir "$workdir/seed_$seed" --variants "$variant"
             --baselines "$baselines" --no-progress --config.train.seed="$seed" "$@")
  if [[ -n ${ADARL_DRY_RUN:-} ]]; then
    local line
    line=$(printf '%q ' "${cmd[@]}")
    echo "$line"  # one write a line: the lanes print at the same time
  else
    mkdir -p "$workdir/seed_$seed"
    "${cmd[@]}" >"$workdir/seed_$seed/$variant.log" 2>&1 ||
      { echo "seeds.sh: seed $seed $variant failed, see $workdir/seed_$seed/$variant.log" >&2; return 1; }
    echo "seeds.sh: seed $seed $variant done"
  fi
}

run_lane() {  # jobs lane, lane + P, lane + 2P, ... one after the other
  local lane=$1 status=0 i seed variant
  shift
  for ((i = lane; i < ${#jobs[@]}; i += parallel)); do
    read -r seed variant <<<"${jobs[$i]}"
    run_job "$lane" "$seed" "$variant" "$@" || status=1
  done
  return $status
}

status=0
pids=()
for ((lane = 0; lane < parallel; lane++)); do
  run_lane "$lane" "$@" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[[ -n ${ADARL_DRY_RUN:-} ]] && exit 0
dirs=()
for seed in "${seed_list[@]}"; do dirs+=("$workdir/seed_$seed"); done
adarl-jax seeds "${dirs[@]}" --out "$workdir/seeds.md"
exit $status
