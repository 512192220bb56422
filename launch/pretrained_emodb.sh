#!/usr/bin/env bash
# Rebuild the model shipped in the package, adarl_jax/pretrained/emodb/, from EmoDB.
#
# usage: launch/pretrained_emodb.sh DATA_DIR [WORKDIR [adarl-jax train flags...]]
#   DATA_DIR  the EmoDB folder (e.g. ../shared/data/emodb)
#   WORKDIR   where the LOSO run and the final model are trained (default runs/pretrained-emodb)
#   e.g.      launch/pretrained_emodb.sh ../shared/data/emodb
#
# Trains the default recipe (--config quick, variant adarl: each speaker's audio standardised
# with that speaker's statistics) on every LOSO fold (they choose the number of epochs and give
# the card its figures; a rerun resumes), then the final model on all ten speakers (train
# --final; an existing WORKDIR/final/adarl is reused), and copies its folder (params.npz,
# config.json, model.json, train_statistics.npz: the ten speakers' pooled statistics, and
# MODEL.md with a note on its use) into adarl_jax/pretrained/emodb/. predict then standardises
# one file with the training speakers' statistics (--speaker-from training, its default for this
# model: a file's output never depends on other files), or a group of a speaker's files with
# their own (--speaker-from folder|csv|call). The shipped model is the CNN alone
# (--no-late-fusion): predicting with it needs no openSMILE. ADARL_DRY_RUN=1 prints the
# commands instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC1091  # common.sh, checked on its own
source "$here/common.sh"
[[ $# -ge 1 && -d $1 ]] || usage
data=$1
workdir=${2:-runs/pretrained-emodb}
shift $(( $# >= 2 ? 2 : 1 ))
repo=$(dirname "$here")
python=${PYTHON:-python3}
export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH}  # this checkout's adarl_jax
final=$workdir/final/adarl
dest=$repo/adarl_jax/pretrained/emodb

if [[ -f $final/model.json && -z ${ADARL_DRY_RUN:-} ]]; then
  if grep -q '"late_fusion"' "$final/model.json"; then
    echo "error: $final is a late fusion (it needs openSMILE to predict); the shipped model is" \
      "the CNN alone: remove $final and rerun" >&2
    exit 2
  fi
  echo "reusing the final model in $final (remove it to train it again)" >&2
else
  run "$python" -m adarl_jax.cli train --config quick --variant adarl --data "$data" \
    --workdir "$workdir" --final --no-late-fusion --no-progress "$@"
fi
run rm -rf "$dest"
run mkdir -p "$dest"
for name in params.npz config.json model.json train_statistics.npz MODEL.md; do
  run cp "$final/$name" "$dest/$name"
done
if [[ -z ${ADARL_DRY_RUN:-} ]]; then
  cat >>"$dest/MODEL.md" <<'NOTE'

## Shipped in the package

This folder is `adarl_jax/pretrained/emodb/`, the model `adarl-jax predict clip.wav` and
`Predictor.from_pretrained("emodb")` use when no other is given. It was built by
`launch/pretrained_emodb.sh DATA_DIR` (docs/INFERENCE.md). Beside the limits above:

- One recording is standardised with the training speakers' pooled statistics
  (`train_statistics.npz`; predict's default `--speaker-from training`), so its output never
  depends on the other files of a call; several recordings of one speaker may be grouped
  (`--speaker-from folder|csv|call`) to use their own statistics, better from about three
  recordings on (RESULTS.md, "Which speaker statistics predict uses").
- 16 kHz input with bands up to 8 kHz: narrower-band audio (telephone, 8 kHz) is flagged in
  the warning column and is read less well.
- No cross-corpus figure is measured for this folder yet.
NOTE
  echo "wrote $dest" >&2
fi
