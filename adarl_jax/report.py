"""Merging fold results (from one machine or many) into results.json and report.md.

results.json is a public format. Per variant:
  wa_pooled, ua_pooled        over all test utterances of all folds
  wa_fold_mean, ua_fold_mean  mean of the per-fold figures
  per_class_recall            pooled, {class: recall}
  confusion                   fold-averaged row-normalised confusion (rows = true class,
                              columns = predicted class, order = `classes`; paper Fig. 4)
  n_utterances, folds         per fold: speaker, wa, ua, n (and gender_accuracy when the
                              variant has a gender head)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adarl_jax import metrics as M
from adarl_jax.files import write_json_atomic, write_text_atomic


def collect(workdir) -> dict[str, list[dict]]:
    """{variant: [fold result, ...]} for every finished fold under `workdir`."""
    out: dict[str, list[dict]] = {}
    for path in sorted(Path(workdir).glob("*/fold_*/result.json")):
        r = json.loads(path.read_text())
        out.setdefault(r["variant"], []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r["fold"])
    return out


def summarize(fold_results: list[dict]) -> dict:
    classes = fold_results[0]["classes"]
    k = len(classes)
    ys, ps, folds, confusions = [], [], [], []
    for r in fold_results:
        rows = [u for u in r["utterances"] if u["emotion"] >= 0]
        y = np.array([u["emotion"] for u in rows], int)
        p = np.array([int(np.argmax(u["probs"])) for u in rows], int)
        ys.append(y)
        ps.append(p)
        confusions.append(M.row_normalised(M.confusion(y, p, k)))
        f = {"fold": r["fold"], "speaker": r["test_speaker"], "n": int(len(y)),
             "wa": M.weighted_accuracy(y, p), "ua": M.unweighted_accuracy(y, p, k),
             "selected_epoch": r.get("selected_epoch")}
        if "gender_accuracy" in r["test"]:
            f["gender_accuracy"] = r["test"]["gender_accuracy"]
        folds.append(f)
    y, p = np.concatenate(ys), np.concatenate(ps)
    recall = M.per_class_recall(y, p, k)
    with np.errstate(invalid="ignore"):
        conf = np.nanmean(np.stack(confusions), axis=0)
    summary = {
        "classes": classes,
        "wa_pooled": M.weighted_accuracy(y, p),
        "ua_pooled": M.unweighted_accuracy(y, p, k),
        "wa_fold_mean": float(np.mean([f["wa"] for f in folds])),
        "ua_fold_mean": float(np.nanmean([f["ua"] for f in folds])),
        "per_class_recall": {c: (None if np.isnan(r) else float(r)) for c, r in zip(classes, recall)},
        "confusion": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in conf],
        "n_utterances": int(len(y)),
        "folds": folds,
    }
    g = [f["gender_accuracy"] for f in folds if "gender_accuracy" in f]
    if g:
        summary["gender_accuracy_fold_mean"] = float(np.mean(g))
    return summary


def markdown(results: dict) -> str:
    lines = ["# Results", "", "LOSO, utterance level (mean of segment probabilities).", "",
             "| variant | folds | WA pooled | UA pooled | WA fold-mean | UA fold-mean | test-speaker gender acc. |",
             "|---|---|---|---|---|---|---|"]
    for v, s in results.items():
        g = s.get("gender_accuracy_fold_mean")
        lines.append(f"| {v} | {len(s['folds'])} | {s['wa_pooled']:.3f} | {s['ua_pooled']:.3f} | "
                     f"{s['wa_fold_mean']:.3f} | {s['ua_fold_mean']:.3f} | {'' if g is None else f'{g:.2f}'} |")
    for v, s in results.items():
        classes = s["classes"]
        lines += ["", f"## {v}", "", "Per-class recall (pooled): " + ", ".join(
            f"{c} {'-' if r is None else f'{r:.3f}'}" for c, r in s["per_class_recall"].items()), "",
            "Confusion, averaged over folds (rows = true, columns = predicted):", "",
            "| true \\ pred | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
        for c, row in zip(classes, s["confusion"]):
            lines.append(f"| {c} | " + " | ".join("-" if x is None else f"{x:.2f}" for x in row) + " |")
        lines += ["", "| fold | speaker | n | WA | UA | gender acc. | epoch |", "|---|---|---|---|---|---|---|"]
        for f in s["folds"]:
            g = f.get("gender_accuracy")
            lines.append(f"| {f['fold']} | {f['speaker']} | {f['n']} | {f['wa']:.3f} | {f['ua']:.3f} | "
                         f"{'' if g is None else f'{g:.2f}'} | {f.get('selected_epoch')} |")
    return "\n".join(lines) + "\n"


def write_report(workdir) -> dict:
    """Summarises every finished fold under `workdir`; writes results.json and report.md."""
    collected = collect(workdir)
    if not collected:
        raise FileNotFoundError(f"no finished folds (*/fold_*/result.json) under {workdir}")
    results = {v: summarize(r) for v, r in collected.items()}
    write_json_atomic(Path(workdir) / "results.json", results)
    write_text_atomic(Path(workdir) / "report.md", markdown(results))
    return results
