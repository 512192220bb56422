#!/usr/bin/env bash
# adarl-jax on a GPU or TPU in one bounded run (under 8 minutes on one modern GPU), one JSON file.
#
#   benchmarks/accelerator_check.sh CORPUS_DIR [--wheels DIR] [--out FILE] [--budget-s 450] [--dry-run]
#
# Needs a Python where jax with the accelerator's plugin is already installed; no internet:
# adarl-jax itself is installed with `pip install --no-deps`, and its pure-Python dependencies
# (soundfile, ml_collections, tqdm, ...) from the wheels in --wheels DIR (`pip download` them
# elsewhere) with --no-index. Everything after CORPUS_DIR but --wheels goes to
# benchmarks/accelerator_check.py (see its --help); PYTHON picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-python3}"

args=()
wheels=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) wheels="$2"; shift 2 ;;
    --wheels=*) wheels="${1#--wheels=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if ! "$python" -c "import jax" 2>/dev/null; then
  echo "accelerator_check: $python cannot import jax; install jax for the accelerator first" >&2
  exit 2
fi
if [[ -n "$wheels" ]]; then
  "$python" -m pip install --no-index --find-links "$wheels" "$wheels"/*.whl
fi
if ! "$python" -c "import adarl_jax" 2>/dev/null; then
  "$python" -m pip install --no-deps --no-build-isolation -e "$repo"
fi
exec "$python" "$here/accelerator_check.py" "${args[@]}"
