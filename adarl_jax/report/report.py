"""Merging fold results (from one machine or many) into results.json and report.md.

results.json is a public format. Per variant:
  wa_pooled, ua_pooled        over all test utterances of all folds
  wa_fold_mean, ua_fold_mean  mean of the per-fold figures
  per_class_recall            pooled, {class: recall}
  confusion                   fold-averaged row-normalised confusion (rows = true class,
                              columns = predicted class, order = `classes`; paper Fig. 4)
  n_utterances, folds         per fold: speaker, wa, ua, n (and gender_accuracy when the
                              variant has a gender head)
  val_ua_fold_mean            (when every fold kept its validation predictions) UA on the
                              folds' validation speakers, mean over folds: what a choice may read
  paired                      {"vs B": A - B on the same test speakers (adarl_jax.report.paired): mean
                              UA difference, 95% bootstrap interval, sign-flip p-value}, for
                              every variant against backbone and the lambda_1 = 0 control
  gender_center_distance      Table 4: {class: mean over fold models of the L2 distance between
                              the male and the female centre of the deep features, inside each
                              fold model, of the utterances it never trained on (validation +
                              test speakers)} (null where no model holds both genders of the class)
  gender_center               {basis, spread (sd over fold models), n_models, folds (per fold
                              model: its distances)}; basis 'fold_models', or, for records
                              without validation-speaker features, 'pooled_across_fold_models'
                              (the test utterances of all folds in one pool: centres from
                              different models; adarl_jax.report.fold_spaces)
  domain_column               (only when the domain is not gender) the manifest column the
                              domain accuracy and Table 4 (gender_center.domain) refer to
  baseline_fit                (openSMILE baselines) C selection, refit_on_val (final fit on
                              training + validation speakers, or on training speakers only as
                              the CNN), fit speakers per fold

report.md adds the ablation table (Table 3, the variants over the folds they all finished), the
paired comparisons, the baselines' fit speakers, Table 4, and links to figures/ (confusion
matrices of the test utterances, Fig. 4; t-SNE per fold model, Fig. 5). It says which
utterances each figure uses.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from adarl_jax import metrics
from adarl_jax.report import figures
from adarl_jax.report.fold_spaces import BASIS_POOLED, GENDER, domain_of, fold_space, gender_center_summary
from adarl_jax.report.paired import paired_markdown, paired_table, speaker_ua
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic
from adarl_jax.workdir.fold_record import refitted_on_val
from adarl_jax.report.late_fusion import collect_systems
from adarl_jax.workdir.layout import RESULTS_GLOB
from adarl_jax.train.test_statistics import pooled_ua

log = logging.getLogger(__name__)

VARIANT_ORDER = ("backbone", "domain_invariant", "adarl_no_domain_loss", "adarl")  # Table 3's rows, then any others
# The paper's IEMOCAP figures, shown beside ours for reference (Tables 3 and 4).
PAPER_TABLE3 = {"backbone": (0.6996, 0.5678), "domain_invariant": (0.7147, 0.6191),
                "adarl": (0.7302, 0.6586)}
PAPER_TABLE4 = {"backbone": {"anger": 11.58, "happiness": 9.16, "sadness": 8.61, "neutral": 10.14},
                "adarl": {"anger": 6.32, "happiness": 3.23, "sadness": 5.41, "neutral": 4.66}}


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
        confusions.append(metrics.row_normalised(metrics.confusion(y, p, k)))
        f = {"fold": r["fold"], "speaker": r["test_speaker"], "n": int(len(y)),
             "wa": metrics.weighted_accuracy(y, p), "ua": metrics.unweighted_accuracy(y, p, k),
             "selected_epoch": r.get("selected_epoch")}
        if r.get("missing_classes"):
            f["missing_classes"] = list(r["missing_classes"])
        if "gender_accuracy" in r["test"]:
            f["gender_accuracy"] = r["test"]["gender_accuracy"]
        folds.append(f)
    y, p = np.concatenate(ys), np.concatenate(ps)
    recall = metrics.per_class_recall(y, p, k)
    with warnings.catch_warnings():  # a class no fold's test speaker has: NaN row, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        conf = np.nanmean(np.stack(confusions), axis=0)
    summary = {
        "classes": classes,
        "wa_pooled": metrics.weighted_accuracy(y, p),
        "ua_pooled": metrics.unweighted_accuracy(y, p, k),
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
    val = [r.get("val_utterances") for r in fold_results]
    if all(val):  # what a choice may read: the validation speakers' UA, mean over folds
        summary["val_ua_fold_mean"] = float(np.mean(
            [metrics.score_utterances(rows, k)["ua"] for rows in val]))
    under = pooled_ua(fold_results, k)
    if under:
        summary["ua_under_statistics"] = under
    column = domain_of(fold_results[0])[0]
    if column != GENDER:  # the domain head's accuracy is then that of this column
        summary["domain_column"] = column
    return summary


def domain_word(summaries) -> str:
    """The domain the accuracy columns name: gender, or the runs' `domain_column`."""
    return next((s["domain_column"] for s in summaries if "domain_column" in s), GENDER)


def markdown(results: dict) -> str:
    word = domain_word(results.values())
    lines = ["# Results", "", "LOSO, utterance level (mean of segment probabilities).", "",
             f"| variant | folds | WA pooled | UA pooled | WA fold-mean | UA fold-mean | test-speaker {word} acc. |",
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
        lines += ["", f"| fold | speaker | n | WA | UA | {word} acc. | epoch |", "|---|---|---|---|---|---|---|"]
        for f in s["folds"]:
            g = f.get("gender_accuracy")
            lines.append(f"| {f['fold']} | {f['speaker']} | {f['n']} | {f['wa']:.3f} | {f['ua']:.3f} | "
                         f"{'' if g is None else f'{g:.2f}'} | {f.get('selected_epoch')} |")
        lines += [f"\n**Fold {f['fold']} ({f['speaker']}) trained without {', '.join(f['missing_classes'])}** "
                  "(no training speaker has it; train.allow_missing_class): its model cannot "
                  "predict it" for f in s["folds"] if f.get("missing_classes")]
    return "\n".join(lines) + "\n"


def statistics_markdown(results: dict) -> list[str]:
    """UA pooled when the test speaker is standardised with the statistics a user has
    (adarl_jax.train.test_statistics): all its utterances (LOSO), each recording alone, K enrolment
    utterances (mean +- sd over draws), the training speakers' pooled statistics."""
    rows = {v: s["ua_under_statistics"] for v, s in results.items() if s.get("ua_under_statistics")}
    if not rows:
        return []
    modes = list(dict.fromkeys(m for r in rows.values() for m in r))
    lines = ["", "## UA under the statistics a user has", "",
             "The test speaker standardised with: all its utterances (the LOSO figure), each "
             "recording's own (`utterance`), K of its utterances drawn at random and not scored "
             "(`enrol:K`, mean ± sd over draws), the training speakers' (`train`).", "",
             "| variant | all | " + " | ".join(modes) + " |", "|---" * (len(modes) + 2) + "|"]
    for v, r in rows.items():
        cells = [f"{r[m]['ua']:.3f}" + (f" ± {r[m]['sd']:.3f}" if r[m]["draws"] > 1 else "")
                 if m in r else "" for m in modes]
        lines.append(f"| {v} | {results[v]['ua_pooled']:.3f} | " + " | ".join(cells) + " |")
    return lines


def validation_markdown(results: dict) -> list[str]:
    """Each system's UA on its folds' validation speakers (mean over folds): the figure a
    choice between recipes may read, never the test speaker's."""
    rows = {v: s["val_ua_fold_mean"] for v, s in results.items() if "val_ua_fold_mean" in s}
    if not rows:
        return []
    return ["", "## Validation speakers", "",
            "UA on each fold's validation speakers (drawn from its training speakers), mean over "
            "folds: what a choice between systems may read. Each CNN's epoch and each SVM's C "
            "were chosen on these speakers, so the figures are optimistic for all of them alike.",
            "", "| system | validation UA, fold-mean |", "|---|---|"] + [
        f"| {v} | {ua:.3f} |" for v, ua in rows.items()]


def ordered_variants(variants) -> list[str]:
    known = [v for v in VARIANT_ORDER if v in variants]
    return known + sorted(v for v in variants if v not in VARIANT_ORDER)


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def ablation_markdown(collected: dict[str, list[dict]]) -> list[str]:
    """Table 3: the variants side by side over the folds every one of them finished."""
    order = ordered_variants(collected)
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


def _is_baseline(fold_results: list[dict]) -> bool:
    return all("baseline" in r for r in fold_results)


def baseline_fit(fold_results: list[dict]) -> dict:
    """What a baseline's final models were fitted on: C selection, whether validation speakers
    were added (`baselines.refit_on_val`), fit speakers per fold."""
    refit = sorted({refitted_on_val(r) for r in fold_results})
    return {"c_select": sorted({str(r["baseline"].get("c_select")) for r in fold_results}),
            "refit_on_val": refit[0] if len(refit) == 1 else None,  # None: folds differ
            "fit_speakers_per_fold": [len(r["baseline"]["fit_speakers"]) for r in fold_results]}


def baselines_markdown(collected: dict[str, list[dict]], results: dict) -> list[str]:
    """The speakers each baseline's final models were fitted on, beside the CNN's."""
    base = [v for v in ordered_variants(collected) if "baseline_fit" in results[v]]
    if not base:
        return []
    cnn = {len(r["train_speakers"]) for v in collected if v not in base for r in collected[v]
           if "train_speakers" in r}
    n_cnn = "/".join(map(str, sorted(cnn))) or "-"
    lines = ["", "## Baselines: the speakers they were fitted on", "",
             f"The CNN variants train on each fold's training speakers ({n_cnn} per fold here) and "
             "have no refit option yet. Each SVM's C is chosen without the test speaker (on the "
             "validation speakers, or by leave-one-speaker-out over the training speakers); its "
             "final fit uses the training speakers, as the CNN does (`baselines.refit_on_val = "
             "False`, the default), or training + validation speakers (`True`: the SVM then sees "
             "more speakers than the CNN, not like-for-like).", "",
             "| baseline | C chosen by | final fit on | fit speakers per fold | CNN's training speakers per fold |",
             "|---|---|---|---|---|"]
    for v in base:
        b = results[v]["baseline_fit"]
        on = {False: "training speakers (as the CNN)", True: "training + validation speakers",
              None: "differs between folds"}[b["refit_on_val"]]
        n = "/".join(map(str, sorted(set(b["fit_speakers_per_fold"]))))
        lines.append(f"| {v} | {', '.join(b['c_select'])} | {on} | {n} | {n_cnn} |")
    return lines


TABLE4_TEXT = (
    "Inside each fold model: the mean deep feature (the emotion head's FC-ReLU-BN output) per "
    "emotion and gender over the utterances that model never trained on, its validation "
    "speakers (one per gender; they chose the epoch) and its test speaker; then the L2 distance "
    "between the male and the female centre. Cells: mean ± standard deviation over the fold "
    "models (in brackets: how many fold models hold both genders of the emotion). Smaller = the "
    "genders overlap more inside a model. What it cannot show: each centre rests on one or two "
    "speakers of a gender, so a speaker difference and a gender difference look the same; each "
    "model has its own feature space, so the mean is over separate measurements, not one space. "
    "The paper's IEMOCAP rows are for reference.")
POOLED_NOTE = (
    "† Pooled, not per model: these result records hold no deep features of the validation "
    "speakers (`val_utterances`; runs made before the trainer saved them, or with "
    "train.selection='last', which holds no speaker out), so no fold model has held-out "
    "utterances of both genders. The figure marked † is the earlier one: the test utterances "
    "of all folds in one pool, so the male and the female centre come from different fold "
    "models' feature spaces and the distance mixes differences between models and speakers "
    "with the gender difference. Only a run that saves `val_utterances` gives the per-model "
    "figure (mean ± standard deviation over the fold models).")


def _cell(mean, spread, n) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f} ± {spread:.2f} ({n})" if spread is not None else f"{mean:.2f} ({n})"


def _domain_table4(results: dict) -> tuple[str, str, list[str]]:
    """(title, text, lines to add instead of the table) for a domain other than gender."""
    domain = next((r["gender_center"]["domain"] for r in results.values()
                   if "domain" in r.get("gender_center", {})), None)
    if domain is None:
        return "## Table 4: L2 distance between the male and female class centres", TABLE4_TEXT, []
    column, values, pair = domain["column"], domain["values"], domain["pair"]
    if pair is None:
        return (f"## Table 4: L2 distance between the class centres of two {column} values", "",
                [f"The domain {column} has {len(values)} values ({', '.join(values)}); Table 4 "
                 "measures the distance between two: not measured."])
    a, b = pair
    text = (f"Inside each fold model: the mean deep feature per emotion and {column} value over "
            f"the utterances that model never trained on (its validation and test speakers); "
            f"then the L2 distance between the {a} and the {b} centre. Cells: mean ± standard "
            f"deviation over the fold models (in brackets: how many fold models hold both values "
            f"for the emotion). Smaller = the two overlap more inside a model. The paper "
            f"measured gender: its rows are not shown.")
    return f"## Table 4: L2 distance between the {a} and {b} class centres ({column})", text, []


def table4_markdown(results: dict) -> list[str]:
    """Table 4: per variant with deep features, the per-model male/female centre distances
    (or those of the two values of another domain, named from the records)."""
    title, text, instead = _domain_table4(results)
    if instead:
        return ["", title, "", *instead]
    order = [v for v in ordered_variants(results) if results[v]["gender_center"]["basis"] is not None]
    if not order:
        return ["", title, "", "No variant carries deep features; nothing to measure."]
    classes = results[order[0]]["classes"]
    pooled = [v for v in order if results[v]["gender_center"]["basis"] == BASIS_POOLED]
    every = len(pooled) == len(order)
    lines = ["", title + (" (pooled over fold models; no per-model figure)" if every else ", inside each fold model"),
             "", POOLED_NOTE if every else text, "",
             "| variant | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for v in order:
        d, g = results[v]["gender_center_distance"], results[v]["gender_center"]
        if v in pooled:
            cells = [_fmt(d[c], 2) + ("" if d[c] is None else "†") for c in classes]
        else:
            cells = [_cell(d[c], g["spread"][c], g["n_models"][c]) for c in classes]
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    for v, d in PAPER_TABLE4.items() if text is TABLE4_TEXT else ():  # the paper's domain: gender
        if all(c in d for c in classes):
            lines.append(f"| paper: {v} | " + " | ".join(f"{d[c]:.2f}" for c in classes) + " |")
    if pooled and len(pooled) < len(order):
        lines += ["", POOLED_NOTE]
    left = [v for v in ordered_variants(results) if v not in order]
    if left:
        lines += ["", f"Left out (no deep features): {', '.join(left)}."]
    return lines


TSNE_TEXT = (
    "t-SNE, one panel per fold model (Fig. 5): each panel embeds only that model's deep "
    "features of the utterances it never trained on, its test speaker (filled) and its "
    "validation speakers (hollow); colour = emotion, marker = gender, red = class centre per "
    "gender. Panels are separate embeddings: positions and scales do not compare across "
    "panels, only the structure within one; t-SNE keeps neighbourhoods, not distances (Table 4 "
    "measures the centres in the model's own space).")
TSNE_TEST_ONLY = (
    "t-SNE, one panel per fold model (Fig. 5), of its test speaker's utterances only: these "
    "result records hold no validation-speaker features, so each panel holds one speaker of "
    "one gender; it shows how that model separates the emotions of an unseen speaker, not "
    "where it places the two genders. Colour = emotion, red = class centre. Panels are "
    "separate embeddings: positions and scales do not compare across panels.")


def tsne_panels(fold_results: list[dict], embed) -> list[dict]:
    """One panel per fold model with deep features: `embed` (features -> points or None) is
    called on that fold model's held-out utterances alone."""
    panels = []
    for r in fold_results:
        s = fold_space(r)
        if s is None:
            continue
        values = domain_of(r)[1]
        test_g = {values[g] if g >= 0 else "?" for g in s.gender[~s.is_val]}
        title = f"fold {s.fold}: test {s.test_speaker} ({'/'.join(sorted(test_g))})"
        if s.is_val.any():
            title += f"; val {', '.join(s.val_speakers)}"
        panels.append({"title": title, "points": embed(s.features), "emotion": s.emotion,
                       "gender": s.gender, "is_val": s.is_val})
    return panels


def _tsne_lines(workdir, v: str, fold_results: list[dict], classes) -> list[str]:
    path = Path(workdir) / "figures" / f"tsne_{v}.png"
    panels = tsne_panels(fold_results, figures.tsne_embedding)
    if not any(p["points"] is not None for p in panels):
        path.unlink(missing_ok=True)  # never leave a stale figure from an earlier run
        most = max((len(p["emotion"]) for p in panels), default=0)
        return [f"t-SNE skipped: no fold model has {figures.MIN_TSNE_POINTS} held-out utterances "
                f"with deep features (at most {most}).", ""]
    with_val = any(p["is_val"].any() for p in panels)
    column, values = domain_of(fold_results[0])
    figures.plot_tsne_grid(panels, classes, values, path, domain=column, title=
                           f"{v}: t-SNE per fold model of its held-out utterances"
                           + ("" if with_val else " (test speaker only)"))
    text = TSNE_TEXT if with_val else TSNE_TEST_ONLY
    if column != GENDER:
        text = text.replace("the two genders", f"the {column} values").replace("gender", column)
    return [text, "", f"![{v} t-SNE](figures/{path.name})", ""]


def write_figures(workdir, collected: dict[str, list[dict]], results: dict) -> list[str]:
    """Writes figures/confusion_<variant>.png and figures/tsne_<variant>.png; returns the
    report.md lines that link them."""
    fig_dir = Path(workdir) / "figures"
    lines = ["", "## Figures", ""]
    for v in ordered_variants(collected):
        s, n_folds = results[v], len(collected[v])
        name = f"confusion_{v}.png"
        figures.plot_confusion(s["confusion"], s["classes"], fig_dir / name,
                               f"{v}: confusion averaged over {n_folds} fold(s)")
        lines += [f"### {v}", "", f"Confusion matrix of the test utterances, averaged over "
                  f"{n_folds} fold(s) (Fig. 4; rows = true class):", "", f"![{v} confusion](figures/{name})", ""]
        lines += _tsne_lines(workdir, v, collected[v], s["classes"])
    return lines


def write_report(workdir, figures: bool = True) -> dict:
    """Summarises every finished fold under `workdir`; writes results.json and report.md
    (with Tables 3 and 4) and, with `figures`, the PNGs of Figs. 4 and 5 under figures/."""
    collected = collect_systems(workdir)
    if not collected:
        raise FileNotFoundError(f"no finished folds ({RESULTS_GLOB}) under {workdir}")
    results = {v: summarize(r) for v, r in collected.items()}
    for v, r in collected.items():
        centres = gender_center_summary(r)
        results[v]["gender_center_distance"] = centres.pop("distance")
        results[v]["gender_center"] = centres
        if _is_baseline(r):
            results[v]["baseline_fit"] = baseline_fit(r)
    text = markdown(results).rstrip("\n").split("\n")
    table = paired_table({v: [speaker_ua(s)] for v, s in results.items()})
    for name, c in table.items():
        a, b = name.split(" vs ")
        results[a].setdefault("paired", {})[f"vs {b}"] = c
    text += (ablation_markdown(collected) + paired_markdown(table) + baselines_markdown(collected, results)
             + validation_markdown(results) + statistics_markdown(results)
             + table4_markdown(results))
    if figures:
        try:
            text += write_figures(workdir, collected, results)
        except ImportError as e:  # matplotlib / scikit-learn missing: tables still get written
            log.warning("figures skipped: %s", e)
            text += ["", f"Figures skipped: {e}."]
    write_json_atomic(Path(workdir) / "results.json", results)
    write_text_atomic(Path(workdir) / "report.md", "\n".join(text) + "\n")
    return results
