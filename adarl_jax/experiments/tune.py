"""Nested recipe selection: `adarl-jax tune`.

A grid file (`configs/grids/*.py`) names a base config and recipe candidates, each a list of
config overrides:

  def get_grid():
      return {"config": "quick", "candidates": {"recipe": [], "adamw": ["optim.optimizer=adamw"]}}

For every outer LOSO fold, every candidate is trained on that fold's training speakers and
scored by UA on the fold's validation speakers (drawn from its training speakers, one per
gender by default; `train.split_seed` fixes which). The candidate with the best validation UA
(ties: the first in the grid) is the fold's winner, and only the winner's test-speaker figures
enter the procedure's outer WA/UA. No test-speaker figure feeds any choice: every candidate
uses the same folds, and the winner's model is the one that was validated (trained on the
fold's training speakers minus its validation speakers, its epoch chosen on them too).

Layout of a tune workdir:
  W/cache/<hash>/                              spectrogram segments, shared by candidates
  W/<candidate>/config.json                    the candidate's full config, pinned
  W/<candidate>/<variant>/fold_<k>_<speaker>/  as a `train` workdir (config.json, result.json, ...)
  W/<candidate>/.locks/fold_<k>.lock           held by the run training the candidate's fold k
  W/tune.json, W/tune.md                       per-fold validation UA, winners, outer scores

Each candidate's folder is a `train` workdir of its own: its config is pinned
(adarl_jax.workdir.pinning; a rerun whose candidate config differs, by the command line's overrides
or by an edited grid, is refused naming the fields, and --force-new-config moves what the old
config trained to W/<candidate>/superseded-<time>/), each fold folder keeps the config it was
trained with, its folds are locked (adarl_jax.workdir.locks: every candidate's, before any trains) and
a rerun resumes: finished folds are skipped.

Candidates' own test figures are in their fold folders and in `tune.json` under
`candidate_test` for the record (what each lever did on test speakers); the procedure never
reads them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from adarl_jax import metrics
from adarl_jax.config import CONFIG_DIR, apply_override, load_config, load_python_file, to_json, validate
from adarl_jax.data.folds import config_folds
from adarl_jax.data.reading import check_domains, data_change, load_checked_dataset, load_dataset
from adarl_jax.experiments import loso
from adarl_jax.model.registry import use_variant
from adarl_jax.train import sharding
from adarl_jax.train.programs import Programs
from adarl_jax.train.trainer import run_fold
from adarl_jax.workdir import pinning
from adarl_jax.workdir.kept_variant import keep_variant_file
from adarl_jax.workdir.files import write_json_atomic, write_text_atomic

__all__ = ["load_grid", "candidate_configs", "choose_winners", "run_tune", "tune_markdown"]

GRID_DIR = CONFIG_DIR / "grids"
# data fields a candidate may change: they keep every utterance, its label and its fold
FREE_DATA_FIELDS = ("other_emotions", "segment_s", "segment_hop_s", "min_tail_s", "trim_db",
                    "level_dbfs")


def load_grid(spec: str) -> dict:
    """A grid file's `get_grid()` ({'config': name or path, 'candidates': {name: [overrides]}})."""
    path = Path(spec) if Path(spec).suffix else GRID_DIR / f"{spec}.py"
    grid = load_python_file(spec, GRID_DIR, "get_grid", "grid")()
    candidates = grid.get("candidates") if isinstance(grid, dict) else None
    if not candidates or not isinstance(candidates, dict):
        raise ValueError(f"grid file {path}: get_grid() must return {{'candidates': {{name: [overrides]}}}}")
    for name, overrides in candidates.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"grid file {path}: candidate name {name!r} must be letters, digits, _ or -")
        if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
            raise ValueError(f"grid file {path}: candidate {name!r} must be a list of 'key=value' strings")
    return {"config": grid.get("config"), "candidates": dict(candidates), "path": str(path)}


def candidate_configs(grid: dict, overrides=(), config_spec: str | None = None,
                      only: list[str] | None = None) -> dict:
    """{name: config}: the grid's base config (or `config_spec`), the command line's overrides,
    then the candidate's own. Every candidate selects by validation speakers. `only`: a subset
    of the candidates, in grid order."""
    unknown = sorted(set(only or ()) - set(grid["candidates"]))
    if unknown:
        raise ValueError(f"--candidates {unknown} are not in the grid ({', '.join(grid['candidates'])})")
    out = {}
    for name, cand in grid["candidates"].items():
        if only and name not in only:
            continue
        config = load_config(config_spec or grid["config"], list(overrides))
        for item in cand:
            apply_override(config, item)
        config.train.selection = "val"
        validate(config)
        out[name] = config
    def split_fields(c):  # what must agree for the candidates to share folds and labels
        data = {k: v for k, v in c.data.to_dict().items() if k not in FREE_DATA_FIELDS}
        return c.train.split_seed, c.train.val_speakers_per_gender, data

    fixed = {n: split_fields(c) for n, c in out.items()}
    first = next(iter(fixed.values()))
    differing = [n for n, f in fixed.items() if f != first]
    if differing:
        raise ValueError(f"grid candidates {differing} change the data or the split (data.* "
                         f"other than data.{', data.'.join(FREE_DATA_FIELDS)}, "
                         "train.split_seed, train.val_speakers_per_gender); candidates must share "
                         "the folds and the labels to be compared")
    return out


def choose_winners(val_ua: dict[str, dict[int, float]], order: list[str]) -> dict[int, str]:
    """{fold: candidate} with the highest validation UA; ties (and NaN) go to the earlier one."""
    folds = sorted(set.intersection(*(set(v) for v in val_ua.values())))
    winners = {}
    for k in folds:
        best, best_ua = None, -np.inf
        for name in order:
            ua = val_ua[name][k]
            if ua is not None and np.isfinite(ua) and ua > best_ua:
                best, best_ua = name, ua
        winners[k] = best if best is not None else order[0]
    return winners


def _pooled(rows: list[dict], num_classes: int) -> dict:
    s = metrics.score_utterances(rows, num_classes)
    labelled = [r for r in rows if r["emotion"] >= 0]
    y = [r["emotion"] for r in labelled]
    p = [int(np.argmax(r["probs"])) for r in labelled]
    s["recall"] = [None if np.isnan(x) else round(float(x), 4)
                   for x in metrics.per_class_recall(y, p, num_classes)]
    return s


def summarise(results: dict[str, dict[int, dict]], classes, order: list[str]) -> dict:
    """The tune record from {candidate: {fold: result record}} (trainer.run_fold's)."""
    val_ua = {n: {k: r["best_val_ua"] for k, r in folds.items()} for n, folds in results.items()}
    winners = choose_winners(val_ua, order)
    nc = len(classes)
    rows = [u for k, name in winners.items() for u in results[name][k]["utterances"]]
    per_fold = [{"fold": k, "test_speaker": results[name][k]["test_speaker"],
                 "val_speakers": results[name][k]["val_speakers"], "winner": name,
                 "val_ua": {n: val_ua[n][k] for n in order},
                 "test": {x: results[name][k]["test"][x] for x in ("wa", "ua")}}
                for k, name in winners.items()]
    candidate_test = {}
    for n in order:
        crows = [u for k in winners for u in results[n][k]["utterances"]]
        candidate_test[n] = {**_pooled(crows, nc),
                             "mean_val_ua": float(np.mean([val_ua[n][k] for k in winners]))}
    return {"classes": list(classes), "candidates": order, "folds": per_fold,
            "outer": {**_pooled(rows, nc),
                      "fold_mean_ua": float(np.mean([f["test"]["ua"] for f in per_fold]))},
            "wins": {n: sum(w == n for w in winners.values()) for n in order},
            "candidate_test": candidate_test}


def tune_markdown(record: dict) -> str:
    order, classes = record["candidates"], record["classes"]
    lines = ["# Nested recipe selection", "",
             "Each fold's winner is the candidate with the best UA on that fold's validation "
             "speakers (drawn from its training speakers); only winners' test figures make the "
             "outer score.", "",
             "| fold | test speaker | val speakers | " + " | ".join(f"val UA {n}" for n in order)
             + " | winner | test WA | test UA |",
             "|" + "---|" * (6 + len(order))]
    for f in record["folds"]:
        lines.append(f"| {f['fold']} | {f['test_speaker']} | {', '.join(f['val_speakers'])} | "
                     + " | ".join(f"{f['val_ua'][n]:.3f}" for n in order)
                     + f" | {f['winner']} | {f['test']['wa']:.3f} | {f['test']['ua']:.3f} |")
    o = record["outer"]
    lines += ["", f"**Outer (the whole procedure, pooled over test speakers): WA {o['wa']:.3f}, "
              f"UA {o['ua']:.3f}** (fold-mean UA {o['fold_mean_ua']:.3f}); recall "
              + ", ".join(f"{c} {r:.2f}" for c, r in zip(classes, o["recall"]) if r is not None), "",
              "Wins: " + ", ".join(f"{n} {k}" for n, k in record["wins"].items()), "",
              "## Each candidate alone (for the record; the procedure never reads these)", "",
              "| candidate | mean val UA | test WA pooled | test UA pooled | "
              + " | ".join(f"{c} recall" for c in classes) + " |",
              "|" + "---|" * (4 + len(classes))]
    for n in order:
        t = record["candidate_test"][n]
        lines.append(f"| {n} | {t['mean_val_ua']:.3f} | {t['wa']:.3f} | {t['ua']:.3f} | "
                     + " | ".join("-" if r is None else f"{r:.2f}" for r in t["recall"]) + " |")
    return "\n".join(lines) + "\n"


def run_tune(grid: dict, workdir, overrides=(), folds: str | None = None, variant: str | None = None,
             config_spec: str | None = None, progress: bool = True,
             only: list[str] | None = None, force_new_config: bool = False) -> dict:
    """Trains every candidate on every requested fold (resumable), then writes tune.json/.md.
    Raises pinning.ConfigMismatchError when a candidate's folder was trained under another
    config (unless `force_new_config`), locks.WorkdirLockedError when another run trains one
    of its folds."""
    workdir = Path(workdir)
    configs = candidate_configs(grid, overrides, config_spec, only)
    if variant:
        for c in configs.values():
            use_variant(c, variant)
    order = list(configs)
    for c in configs.values():  # a variant file outside the package: the workdir's copy from here on
        keep_variant_file(c, workdir)
    # every candidate's pinned config first: a refusal leaves the workdir as it was (but for
    # the content-addressed copy of a variant file)
    diffs = {n: pinning.check_workdir_config(configs[n], workdir / n, force_new_config)
             for n in order}
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = sharding.make_mesh()
    first = configs[order[0]]
    dataset, changed = load_checked_dataset(first, workdir, progress, force_new_config)
    if changed:  # other recordings (forced): every candidate starts afresh
        diffs = {n: [*d, data_change(changed)] for n, d in diffs.items()}
    chosen = config_folds(first, dataset.utterances, folds)  # selection 'val' (above); shared
    is_writer = jax.process_index() == 0
    held = []
    results: dict[str, dict[int, dict]] = {}
    t0 = time.time()
    try:
        for name in order:
            (workdir / name).mkdir(exist_ok=True)
            if is_writer and not diffs[name]:
                pinning.write_workdir_config(configs[name], workdir / name)
            held.append(loso.take_fold_locks(configs[name], workdir / name, chosen, diffs[name]))
        for name in order:
            config = configs[name]
            dataset = load_dataset(config, workdir, progress)
            check_domains(config, dataset, chosen)
            programs = Programs()  # the candidate's folds share its train step and evaluator
            records = loso.run_folds(
                workdir / name, config.model.variant, chosen,
                lambda fold, fdir, c=config, p=programs: run_fold(c, dataset, fold, fdir, mesh,
                                                                  progress, p),
                check=lambda fdir, c=config: pinning.pin_fold_config(c, fdir, write=is_writer),
                label=f"tune {name}", write=is_writer,
                describe=lambda r: f"val UA {r['best_val_ua']:.3f} ({time.time() - t0:.0f} s)")
            results[name] = {r["fold"]: r for r in records}
    finally:
        for h in held:
            if h is not None:
                h.release()
    record = summarise(results, tuple(first.data.classes), order)
    record.update({"grid": grid["path"], "variant": first.model.variant,
                   "wall_time_s": round(time.time() - t0, 1)})
    write_json_atomic(workdir / "tune.json", record)
    write_text_atomic(workdir / "tune.md", tune_markdown(record))
    return record
