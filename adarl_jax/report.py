"""Merging fold results (from one machine or many) into results.json and report.md.

results.json is a public format. Per variant:
  wa_pooled, ua_pooled        over all test utterances of all folds
  wa_fold_mean, ua_fold_mean  mean of the per-fold figures
  per_class_recall            pooled, {class: recall}
  confusion                   fold-averaged row-normalised confusion (rows = true class,
                              columns = predicted class, order = `classes`; paper Fig. 4)
  n_utterances, folds         per fold: speaker, wa, ua, n (and gender_accuracy when the
                              variant has a gender head)
  paired                      {"vs B": A - B on the same test speakers (adarl_jax.paired): mean
                              UA difference, 95% bootstrap interval, sign-flip p-value}, for
                              every variant against backbone and the lambda_1 = 0 control
  gender_center_distance      {class: L2 distance between the male and the female centre of
                              the test utterances' deep features, pooled over folds; Table 4}
                              (null where a gender lacks the class or features are missing)

report.md adds the ablation table (Table 3, the variants over the folds they all finished),
Table 4, and links to figures/ (confusion matrices, Fig. 4; t-SNE of the deep features, Fig. 5).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from adarl_jax import metrics as M
from adarl_jax.files import write_json_atomic, write_text_atomic
from adarl_jax.paired import paired_markdown, paired_table, speaker_ua

log = logging.getLogger(__name__)

VARIANT_ORDER = ("backbone", "domain_invariant", "adarl_no_domain_loss", "adarl")  # Table 3's rows, then any others
# The paper's IEMOCAP figures, shown beside ours for reference (Tables 3 and 4).
PAPER_TABLE3 = {"backbone": (0.6996, 0.5678), "domain_invariant": (0.7147, 0.6191),
                "adarl": (0.7302, 0.6586)}
PAPER_TABLE4 = {"backbone": {"anger": 11.58, "happiness": 9.16, "sadness": 8.61, "neutral": 10.14},
                "adarl": {"anger": 6.32, "happiness": 3.23, "sadness": 5.41, "neutral": 4.66}}


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


def _ordered(variants) -> list[str]:
    known = [v for v in VARIANT_ORDER if v in variants]
    return known + sorted(v for v in variants if v not in VARIANT_ORDER)


def _test_features(fold_results: list[dict]):
    """(features (n, d), emotion (n,), gender (n,)) of the labelled test utterances of all
    folds that carry a deep feature; None if none does."""
    rows = [u for r in fold_results for u in r["utterances"]
            if u["emotion"] >= 0 and u.get("deep_feature") is not None]
    if not rows:
        return None
    return (np.array([u["deep_feature"] for u in rows], np.float64),
            np.array([u["emotion"] for u in rows], int), np.array([u["gender"] for u in rows], int))


def _male_female(genders) -> tuple[int, int] | None:
    genders = list(genders)
    if "M" in genders and "F" in genders:
        return genders.index("M"), genders.index("F")
    return (0, 1) if len(genders) == 2 else None


def gender_center_distances(fold_results: list[dict]) -> dict[str, float | None]:
    """Table 4: per emotion, ||mean feature of male - mean feature of female|| (L2).

    Pooled over the folds' test utterances: a LOSO test set holds one speaker, hence one
    gender, so the two centres come from different folds' models.
    """
    classes = fold_results[0]["classes"]
    data = _test_features(fold_results)
    pair = _male_female(fold_results[0].get("genders", ("F", "M")))
    out: dict[str, float | None] = {c: None for c in classes}
    if data is None or pair is None:
        return out
    x, y, g = data
    male, female = pair
    for k, c in enumerate(classes):
        m, f = x[(y == k) & (g == male)], x[(y == k) & (g == female)]
        if len(m) and len(f):
            out[c] = float(np.linalg.norm(m.mean(axis=0) - f.mean(axis=0)))
    return out


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def ablation_markdown(collected: dict[str, list[dict]]) -> list[str]:
    """Table 3: the variants side by side over the folds every one of them finished."""
    order = _ordered(collected)
    common = sorted(set.intersection(*[{r["fold"] for r in collected[v]} for v in order]))
    lines = ["", "## Table 3: ablation", ""]
    if not common:
        return lines + ["The variants share no finished fold; nothing to compare yet."]
    every = all(len(collected[v]) == len(common) for v in order)
    lines.append(f"LOSO over {'all ' if every else 'the '}{len(common)} fold(s) "
                 f"{'' if every else 'that every variant finished '}({', '.join(map(str, common))}); "
                 "the paper's figures are on IEMOCAP, for reference.")
    lines += ["", "| variant | WA pooled | UA pooled | UA fold-mean | UA vs backbone | "
                  "paper WA | paper UA |", "|---|---|---|---|---|---|---|"]
    base = None
    subsets = {v: summarize([r for r in collected[v] if r["fold"] in common]) for v in order}
    if "backbone" in subsets:
        base = subsets["backbone"]["ua_pooled"]
    for v in order:
        s = subsets[v]
        paper = PAPER_TABLE3.get(v, (None, None))
        delta = "" if base is None or v == "backbone" else f"{s['ua_pooled'] - base:+.3f}"
        lines.append(f"| {v} | {s['wa_pooled']:.3f} | {s['ua_pooled']:.3f} | "
                     f"{s['ua_fold_mean']:.3f} | {delta} | {_fmt(paper[0], 4)} | {_fmt(paper[1], 4)} |")
    return lines


def table4_markdown(results: dict) -> list[str]:
    order = _ordered(results)
    classes = results[order[0]]["classes"]
    lines = ["", "## Table 4: L2 distance between the male and female class centres", "",
             "Mean deep feature (the emotion head's FC-ReLU-BN output, 64-d in the paper) of the test utterances per emotion and gender, pooled over "
             "the folds (each LOSO test set holds one speaker, so the two centres come from "
             "different folds' models). Smaller = the genders overlap more. The paper's IEMOCAP "
             "rows are for reference.", "",
             "| variant | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for v in order:
        d = results[v].get("gender_center_distance", {})
        lines.append(f"| {v} | " + " | ".join(_fmt(d.get(c), 2) for c in classes) + " |")
    for v, d in PAPER_TABLE4.items():
        if all(c in d for c in classes):
            lines.append(f"| paper: {v} | " + " | ".join(f"{d[c]:.2f}" for c in classes) + " |")
    return lines


def write_figures(workdir, collected: dict[str, list[dict]], results: dict) -> list[str]:
    """Writes figures/confusion_<variant>.png and figures/tsne_<variant>.png; returns the
    report.md lines that link them."""
    from adarl_jax import figures as F

    fig_dir = Path(workdir) / "figures"
    lines = ["", "## Figures", ""]
    for v in _ordered(collected):
        s, n_folds = results[v], len(collected[v])
        name = f"confusion_{v}.png"
        F.plot_confusion(s["confusion"], s["classes"], fig_dir / name,
                         f"{v}: confusion averaged over {n_folds} fold(s)")
        lines += [f"### {v}", "", f"Confusion matrix, averaged over {n_folds} fold(s) "
                  f"(Fig. 4; rows = true class):", "", f"![{v} confusion](figures/{name})", ""]
        data = _test_features(collected[v])
        tsne_path = fig_dir / f"tsne_{v}.png"
        points = None if data is None else F.tsne_embedding(data[0])
        if points is None:
            tsne_path.unlink(missing_ok=True)  # never leave a stale figure from an earlier run
            n = 0 if data is None else len(data[0])
            lines += [f"t-SNE skipped: {n} test utterance(s) with deep features, "
                      f"fewer than {F.MIN_TSNE_POINTS}.", ""]
            continue
        genders = collected[v][0].get("genders", ["F", "M"])
        F.plot_tsne(points, data[1], data[2], s["classes"], genders, tsne_path,
                    f"{v}: t-SNE of {len(points)} test utterances' deep features")
        lines += [f"t-SNE of the deep features of the {len(points)} test utterances, all folds "
                  "(Fig. 5; colour = emotion, marker = gender, red = class centre per gender). Each "
                  "fold's utterances come from that fold's own model, so clusters may split "
                  "by fold (here: by test speaker) as well as by emotion:", "",
                  f"![{v} t-SNE](figures/{tsne_path.name})", ""]
    return lines


def write_report(workdir, figures: bool = True) -> dict:
    """Summarises every finished fold under `workdir`; writes results.json and report.md
    (with Tables 3 and 4) and, with `figures`, the PNGs of Figs. 4 and 5 under figures/."""
    collected = collect(workdir)
    if not collected:
        raise FileNotFoundError(f"no finished folds (*/fold_*/result.json) under {workdir}")
    results = {v: summarize(r) for v, r in collected.items()}
    for v, r in collected.items():
        results[v]["gender_center_distance"] = gender_center_distances(r)
    text = markdown(results).rstrip("\n").split("\n")
    table = paired_table({v: [speaker_ua(s)] for v, s in results.items()})
    for name, c in table.items():
        a, b = name.split(" vs ")
        results[a].setdefault("paired", {})[f"vs {b}"] = c
    text += ablation_markdown(collected) + paired_markdown(table) + table4_markdown(results)
    if figures:
        try:
            text += write_figures(workdir, collected, results)
        except ImportError as e:  # matplotlib / scikit-learn missing: tables still get written
            log.warning("figures skipped: %s", e)
            text += ["", f"Figures skipped: {e}."]
    write_json_atomic(Path(workdir) / "results.json", results)
    write_text_atomic(Path(workdir) / "report.md", "\n".join(text) + "\n")
    return results
