"""Headline figures over seeds: the same run repeated with `--config.train.seed=k`, one workdir
a seed, summarised as mean and standard deviation per variant. The validation speakers are
drawn by `train.split_seed` (fixed), so the spread is that of initialisation and batch order
alone; vary `--config.train.split_seed` too to include which speakers validate.

  adarl-jax seeds runs/s0 runs/s1 runs/s2 --out runs/seeds.md   # also writes runs/seeds.json

Each workdir is read as `report` reads it (every finished `<variant>/fold_*/result.json`); a
variant is summarised over the workdirs that hold it, on the folds that all of them finished,
so that a missing fold in one seed never skews the mean. The difference adarl - backbone in UA
is taken per seed (same seed, same folds) before it is averaged: the paper's claim, with its
spread. Where a variant has two or more seeds, its seed ensemble is scored too: each test
utterance's emotion (and gender) probabilities averaged over the seeds, then WA/UA as for one
run (a system that costs one training run a seed; no test label is used to build it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adarl_jax import metrics
from adarl_jax.report.averaging import average_folds as ensemble_folds
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic
from adarl_jax.report.paired import comparisons, paired_comparison, paired_markdown, speaker_ua
from adarl_jax.report.report import domain_word, ordered_variants, summarize
from adarl_jax.report.late_fusion import collect_systems
from adarl_jax.workdir.layout import RESULTS_GLOB

METRICS = ("wa_pooled", "ua_pooled", "wa_fold_mean", "ua_fold_mean", "gender_accuracy_fold_mean")


def mean_std(values) -> dict:
    """{'mean', 'std' (sample, ddof=1; 0 for one value), 'n', 'values'}."""
    v = np.asarray(values, np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": int(len(v)), "values": [round(float(x), 4) for x in v]}


def _common_folds(runs: list[list[dict]]) -> set[int]:
    return set.intersection(*[{r["fold"] for r in rs} for rs in runs])


def validation_ensemble(runs: list[list[dict]], folds) -> dict | None:
    """The seed ensemble on the validation speakers against one model: the mean over folds of
    the validation UA of the ensemble, and of each seed's model (mean over the seeds); None when
    the folds kept no validation predictions. Each single model's epoch was chosen on these
    speakers, the ensemble's members' too, so the single models' figure is the more optimistic."""
    if not all(r.get("val_utterances") for rs in runs for r in rs if r["fold"] in folds):
        return None
    try:
        ens = {r["fold"]: r["validation"]["ua"] for r in ensemble_folds(runs, folds, "val_utterances")}
    except ValueError:  # seeds that validated on other speakers (train.split_seed varied)
        return None
    classes = len(runs[0][0]["classes"])
    folds = sorted(folds)
    single = np.array([[metrics.score_utterances(next(r for r in rs if r["fold"] == f)["val_utterances"],
                                                 classes)["ua"] for f in folds] for rs in runs])
    return {"single_mean_fold_ua": mean_std(single.mean(1)),
            "ensemble_mean_fold_ua": float(np.mean([ens[f] for f in folds])),
            "ensemble_higher_folds": int(sum(ens[f] > m for f, m in zip(folds, single.mean(0)))),
            "folds": len(folds)}


def summarize_seeds(workdirs) -> dict:
    """{variant: {metric: mean_std, 'folds': [...], 'workdirs': [...]}, and
    'ua_adarl_minus_backbone' when both variants are there}."""
    collected = [(str(w), collect_systems(w)) for w in workdirs]
    variants = ordered_variants({v for _, c in collected for v in c})
    if not variants:
        raise FileNotFoundError(f"no finished folds ({RESULTS_GLOB}) under "
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
        if "domain_column" in sums[0]:  # a domain other than gender: its accuracy column's name
            entry["domain_column"] = sums[0]["domain_column"]
        if len(runs) > 1:
            ens = summarize(ensemble_folds([rs for _, rs in runs], folds))
            entry["ensemble"] = {m: ens[m] for m in METRICS + ("per_class_recall",) if m in ens}
            val = validation_ensemble([rs for _, rs in runs], folds)
            if val is not None:
                entry["ensemble_validation"] = val
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
    # paired over speakers and seeds: the workdirs that hold both variants, same seed each
    table = {}
    for a, b in comparisons(list(variants)):
        runs = [(speaker_ua(summarize(c[a])), speaker_ua(summarize(c[b])))
                for _, c in collected if a in c and b in c]
        if runs:
            table[f"{a} vs {b}"] = paired_comparison([x for x, _ in runs], [y for _, y in runs])
    if table:
        out["paired"] = table
    return out


def _pm(stat: dict | None) -> str:
    if stat is None:
        return "-"
    return f"{stat['mean']:.3f}" if stat["n"] == 1 else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def seeds_markdown(summary: dict) -> str:
    lines = ["# Over seeds", "", "Mean ± standard deviation (ddof=1) over the workdirs (one a "
             "seed; one value where a single workdir holds the variant, e.g. the deterministic baselines); LOSO, utterance level, over the folds every seed of the variant finished.", "",
             "| variant | seeds | folds | WA pooled | UA pooled | WA fold-mean | UA fold-mean | "
             f"test-speaker {domain_word(e for e in summary.values() if isinstance(e, dict))} acc. |",
             "|---|---|---|---|---|---|---|---|"]
    for v, e in summary.items():
        if v in ("ua_adarl_minus_backbone", "paired"):
            continue
        lines.append(f"| {v} | {e['ua_pooled']['n']} | {len(e['folds'])} | {_pm(e.get('wa_pooled'))} | "
                     f"{_pm(e.get('ua_pooled'))} | {_pm(e.get('wa_fold_mean'))} | "
                     f"{_pm(e.get('ua_fold_mean'))} | {_pm(e.get('gender_accuracy_fold_mean'))} |")
    ensembles = [(v, e) for v, e in summary.items() if "ensemble" in e]
    for v, e in ensembles:
        ens, n = e["ensemble"], e["ua_pooled"]["n"]
        g = ens.get("gender_accuracy_fold_mean")
        lines.append(f"| {v}, ensemble of the {n} seeds | {n} | {len(e['folds'])} | "
                     f"{ens['wa_pooled']:.3f} | {ens['ua_pooled']:.3f} | {ens['wa_fold_mean']:.3f} | "
                     f"{ens['ua_fold_mean']:.3f} | {'-' if g is None else f'{g:.3f}'} |")
    if ensembles:
        lines += ["", "An ensemble row averages each test utterance's probabilities over the seeds "
                      "(one model a seed), then scores the mean."]
    validated = [(v, e["ensemble_validation"]) for v, e in ensembles if "ensemble_validation" in e]
    if validated:
        lines += ["", "On the validation speakers (what a choice may read; each model's epoch was "
                      "chosen on them, which favours the single models):", "",
                  "| variant | mean fold validation UA, one model (mean ± sd over seeds) | "
                  "seed ensemble | ensemble higher |", "|---|---|---|---|"]
        lines += [f"| {v} | {_pm(val['single_mean_fold_ua'])} | {val['ensemble_mean_fold_ua']:.3f} | "
                  f"{val['ensemble_higher_folds']} / {val['folds']} folds |" for v, val in validated]
    d = summary.get("ua_adarl_minus_backbone")
    if d:
        lines += ["", f"UA pooled, adarl - backbone (per seed, same folds): {d['mean']:+.3f} ± "
                      f"{d['std']:.3f} over {d['n']} seed(s); per seed "
                      + ", ".join(f"{x:+.3f}" for x in d["values"]) + "."]
    lines += paired_markdown(summary.get("paired", {}))
    return "\n".join(lines) + "\n"


def write_seeds_report(workdirs, out) -> dict:
    """Writes `out` (markdown) and the same summary as JSON beside it (`.json`)."""
    summary = summarize_seeds(workdirs)
    out = Path(out)
    write_text_atomic(out, seeds_markdown(summary))
    write_json_atomic(out.with_suffix(".json"), summary)
    return summary
