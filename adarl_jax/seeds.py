"""Headline figures over seeds: the same run repeated with `--config.train.seed=k`, one workdir
a seed, summarised as mean and standard deviation per variant.

  adarl-jax seeds runs/s0 runs/s1 runs/s2 --out runs/seeds.md   # also writes runs/seeds.json

Each workdir is read as `report` reads it (every finished `<variant>/fold_*/result.json`); a
variant is summarised over the workdirs that hold it, on the folds that all of them finished,
so that a missing fold in one seed never skews the mean. The difference adarl - backbone in UA
is taken per seed (same seed, same folds) before it is averaged: the paper's claim, with its
spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adarl_jax.files import write_json_atomic, write_text_atomic
from adarl_jax.report import _ordered, collect, summarize

METRICS = ("wa_pooled", "ua_pooled", "wa_fold_mean", "ua_fold_mean", "gender_accuracy_fold_mean")


def mean_std(values) -> dict:
    """{'mean', 'std' (sample, ddof=1; 0 for one value), 'n', 'values'}."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v)), "values": [round(float(x), 4) for x in v]}


def _common_folds(runs: list[list[dict]]) -> set[int]:
    return set.intersection(*[{r["fold"] for r in rs} for rs in runs])


def summarize_seeds(workdirs) -> dict:
    """{variant: {metric: mean_std, 'folds': [...], 'workdirs': [...]}, and
    'ua_adarl_minus_backbone' when both variants are there}."""
    collected = [(str(w), collect(w)) for w in workdirs]
    variants = _ordered({v for _, c in collected for v in c})
    if not variants:
        raise FileNotFoundError(f"no finished folds (*/fold_*/result.json) under "
                                f"{', '.join(str(w) for w in workdirs)}")
    out: dict = {}
    for v in variants:
        runs = [(w, c[v]) for w, c in collected if v in c]
        folds = _common_folds([rs for _, rs in runs])
        if not folds:
            continue
        sums = [summarize([r for r in rs if r["fold"] in folds]) for _, rs in runs]
        entry = {m: mean_std([s[m] for s in sums]) for m in METRICS if all(m in s for s in sums)}
        entry["folds"] = sorted(folds)
        entry["workdirs"] = [w for w, _ in runs]
        entry["seeds"] = [rs[0].get("seed") for _, rs in runs]
        out[v] = entry
    pairs = [(c["adarl"], c["backbone"]) for _, c in collected if "adarl" in c and "backbone" in c]
    if pairs:
        diffs = []
        for a, b in pairs:
            folds = _common_folds([a, b])
            if folds:
                diffs.append(summarize([r for r in a if r["fold"] in folds])["ua_pooled"]
                             - summarize([r for r in b if r["fold"] in folds])["ua_pooled"])
        if diffs:
            out["ua_adarl_minus_backbone"] = mean_std(diffs)
    return out


def _pm(stat: dict | None) -> str:
    if stat is None:
        return "-"
    return f"{stat['mean']:.3f}" if stat["n"] == 1 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def seeds_markdown(summary: dict) -> str:
    lines = ["# Over seeds", "", "Mean ± standard deviation (ddof=1) over the workdirs (one a "
             "seed; one value where a single workdir holds the variant, e.g. the deterministic baselines); LOSO, utterance level, over the folds every seed of the variant finished.", "",
             "| variant | seeds | folds | WA pooled | UA pooled | WA fold-mean | UA fold-mean | "
             "test-speaker gender acc. |", "|---|---|---|---|---|---|---|---|"]
    for v, e in summary.items():
        if v == "ua_adarl_minus_backbone":
            continue
        lines.append(f"| {v} | {e['ua_pooled']['n']} | {len(e['folds'])} | {_pm(e.get('wa_pooled'))} | "
                     f"{_pm(e.get('ua_pooled'))} | {_pm(e.get('wa_fold_mean'))} | "
                     f"{_pm(e.get('ua_fold_mean'))} | {_pm(e.get('gender_accuracy_fold_mean'))} |")
    d = summary.get("ua_adarl_minus_backbone")
    if d:
        lines += ["", f"UA pooled, adarl - backbone (per seed, same folds): {d['mean']:+.3f} ± "
                      f"{d['std']:.3f} over {d['n']} seed(s); per seed "
                      + ", ".join(f"{x:+.3f}" for x in d["values"]) + "."]
    return "\n".join(lines) + "\n"


def write_seeds_report(workdirs, out) -> dict:
    """Writes `out` (markdown) and the same summary as JSON beside it (`.json`)."""
    summary = summarize_seeds(workdirs)
    out = Path(out)
    write_text_atomic(out, seeds_markdown(summary))
    write_json_atomic(out.with_suffix(".json"), summary)
    return summary
