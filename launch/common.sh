# Helpers every launch script sources (not run on its own).
#   usage            prints the calling script's '# usage:' comment block to stderr, exits 2
#   run CMD...       runs CMD, or prints it bash-quoted when ADARL_DRY_RUN is set
#   check_train_args "$@"  usage unless the arguments start train|reproduce CONFIG WORKDIR
# shellcheck shell=bash

usage() { sed -n '/^# usage:/,/^[^#]/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
run() { if [[ -n ${ADARL_DRY_RUN:-} ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }

check_train_args() {
  [[ $# -ge 3 && $1 != -h && $1 != --help ]] || usage
  [[ $1 == train || $1 == reproduce ]] || usage
}
