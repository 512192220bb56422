"""Where a workdir keeps its folds: the one place that knows the fold folders' layout.

  W/<variant>/fold_<kk>_<speaker>/          one LOSO fold of one variant (kk: two digits)
  W/<variant>/fold_<kk>_<speaker>/result.json   written when the fold has finished

`fold_dir` names a fold's folder, `parse_fold_name` reads a folder name back, `fold_dirs`
lists a variant's fold folders, and `collect` gathers the result records of finished folds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["RESULT_FILE", "RESULTS_GLOB", "fold_name", "fold_dir", "parse_fold_name", "fold_dirs",
           "result_path", "collect"]

RESULT_FILE = "result.json"
RESULTS_GLOB = f"*/fold_*/{RESULT_FILE}"  # every finished fold of every variant, from W
_FOLD_NAME = re.compile(r"^fold_(\d+)_(.+)$")


def fold_name(index: int, speaker: str) -> str:
    """The folder name of fold `index`, whose test speaker is `speaker`."""
    return f"fold_{int(index):02d}_{speaker}"


def fold_dir(workdir, variant: str, fold) -> Path:
    """W/<variant>/fold_<kk>_<speaker> for a fold (anything with .index and .test_speaker)."""
    return Path(workdir) / variant / fold_name(fold.index, fold.test_speaker)


def parse_fold_name(name: str) -> tuple[int, str] | None:
    """(index, speaker) of a fold folder's name, or None for a name that is not one."""
    m = _FOLD_NAME.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


def fold_dirs(variant_dir) -> dict[int, Path]:
    """{index: folder} of the fold folders in W/<variant>, finished or not."""
    out = {}
    for d in sorted(Path(variant_dir).glob("fold_*")):
        parsed = parse_fold_name(d.name)
        if parsed and d.is_dir():
            out[parsed[0]] = d
    return out


def result_path(folder) -> Path:
    """A fold folder's result record (present once the fold has finished)."""
    return Path(folder) / RESULT_FILE


def collect(workdir) -> dict[str, list[dict]]:
    """{variant: [fold result, ...]} for every finished fold under `workdir`, by fold."""
    out: dict[str, list[dict]] = {}
    for path in sorted(Path(workdir).glob(RESULTS_GLOB)):
        r = json.loads(path.read_text())
        out.setdefault(r["variant"], []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r["fold"])
    return out
