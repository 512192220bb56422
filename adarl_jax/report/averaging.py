"""Averaging fold results: each utterance's probabilities averaged over several runs of the same
folds (the seeds of a seed ensemble, adarl_jax.report.seeds; the members of a late fusion,
adarl_jax.report.late_fusion), then scored again as one run."""

from __future__ import annotations

import os

import numpy as np

from adarl_jax import metrics

__all__ = ["average_folds"]


def _mean_of(rows: list[dict], key: str) -> list[float] | None:
    if not all(key in r for r in rows):
        return None
    return [round(float(x), 6) for x in np.mean([r[key] for r in rows], axis=0)]


def _recordings(rows: list[dict], by_index: bool = True) -> list[tuple]:
    """(utterance index, the file's real path) per row: the same recording reached through
    another path (a corpus folder linked from two checkouts) is the same recording. Without
    `by_index`, the path alone (runs that number their utterances differently)."""
    return [((u["utterance"],) if by_index else ()) + (os.path.realpath(u["path"]),) for u in rows]


def average_folds(runs: list[list[dict]], folds, key: str = "utterances",
                  by_index: bool = True) -> list[dict]:
    """Fold results whose utterances' probabilities are the mean over `runs` (one list of fold
    results a run: a seed, or a member of a fused system), scored again; every run must have
    scored the same utterances in order (the same index and file; with `by_index=False` the
    same file: the SVMs number the utterances openSMILE could describe).
    `key`: the test utterances ('utterances') or the validation ones ('val_utterances')."""
    out = []
    for f in sorted(folds):
        per_run = [next(r for r in rs if r["fold"] == f) for rs in runs]
        first = per_run[0]
        keys = _recordings(first[key], by_index)
        for r in per_run[1:]:
            if _recordings(r[key], by_index) != keys:
                raise ValueError(f"fold {f}: the runs scored different utterances "
                                 f"({first['test_speaker']}); cannot average their predictions")
        rows = []
        for same in zip(*(r[key] for r in per_run)):
            row = {k: v for k, v in same[0].items() if k not in ("probs", "domain_probs", "deep_feature")}
            row["probs"] = _mean_of(same, "probs")
            domain = _mean_of(same, "domain_probs")
            if domain is not None:
                row["domain_probs"] = domain
            rows.append(row)
        scored = metrics.score_utterances(rows, len(first["classes"]))
        out.append({**first, key: rows, "selected_epoch": None,
                    **({"test": scored} if key == "utterances" else {"validation": scored})})
    return out
