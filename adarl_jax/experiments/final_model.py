"""One final model to ship: trained on every speaker, for as many epochs as LOSO selected.

LOSO leaves one model per fold, each blind to one speaker: they measure the recipe, and none
of them is the model to ship. `train_final` reads a finished LOSO run of the config's variant,
takes the number of epochs as the median over the folds of the epochs their selection kept
(`selected_epoch + 1`: the validation-selected epoch under train.selection='val', else every
epoch), rounded half up, and trains one model on all speakers of the corpus (no validation, no
test: selection 'last') with the same trainer, schedule and seeding rule as the folds (its run
index is the one after the last fold's). The learning-rate schedule is the LOSO run's,
stopped after that many epochs, as each fold's selected model was.

The result is a model folder (adarl_jax.inference.model_folder): parameters, config, model.json and the
model card MODEL.md. Training runs in the folder's staging folder, so it resumes after a kill,
and the folder appears only once complete.

  record = train_final(config, "runs/emodb", "runs/emodb/final/adarl")
  Predictor.load("runs/emodb/final/adarl").predict(wave, 16000)
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from adarl_jax import __version__
from adarl_jax.workdir.kept_variant import keep_variant_file
from adarl_jax.workdir import pinning
from adarl_jax.config import input_shape, to_json
from adarl_jax.workdir.files import write_text_atomic
from adarl_jax.data.folds import every_speaker_fold, loso_folds
from adarl_jax.data.reading import check_domains, corpus_dir, load_dataset
from adarl_jax.model import param_counts
from adarl_jax.report.model_card import model_card
from adarl_jax.inference.model_folder import (ENSEMBLE_FORMAT_VERSION, FORMAT,
                                              LATE_FUSION_FORMAT_VERSION, MODEL_FILE,
                                              check_target, staging_dir, write_model_folder)
from adarl_jax.train.programs import Programs
from adarl_jax.train.sharding import checked_mesh
from adarl_jax.train.test_statistics import training_statistics
from adarl_jax.train.trainer import open_checkpoints, resume, setup_run, train_epochs
from adarl_jax.report.late_fusion import collect_systems
from adarl_jax.workdir.layout import fold_dir
from adarl_jax.workdir.locks import FolderLock

__all__ = ["EPOCHS_RULE", "epochs_rule", "late_fusion_files", "train_final"]

log = logging.getLogger(__name__)

EPOCHS_RULE = ("median over the LOSO folds of the epochs each fold's selection kept "
               "(selected_epoch + 1), rounded half up")


def epochs_rule(fold_results: list[dict]) -> dict:
    """{'epochs', 'rule', 'median', 'per_fold'} from the folds' result records."""
    per_fold = [{"fold": r["fold"], "test_speaker": r["test_speaker"],
                 "selection": r.get("selection"), "selected_epoch": int(r["selected_epoch"]),
                 "epochs_kept": int(r["selected_epoch"]) + 1, "epochs_trained": r.get("epochs")}
                for r in fold_results]
    median = float(np.median([f["epochs_kept"] for f in per_fold]))
    return {"epochs": max(1, math.floor(median + 0.5)), "rule": EPOCHS_RULE, "median": median,
            "per_fold": per_fold}


def _finished_results(config, workdir: Path, dataset, collected: dict) -> list[dict]:
    """The variant's fold results (from `collected`, workdir.collect's record), once every
    LOSO fold of the corpus has one."""
    variant = config.model.variant
    done = {r["fold"]: r for r in collected.get(variant, [])}
    missing = [fold_dir(workdir, variant, f) for f in loso_folds(dataset.utterances, 0, 0)
               if f.index not in done]
    if missing:
        raise ValueError(
            f"the LOSO run of variant {variant!r} in {workdir} has not finished: {len(missing)} "
            f"fold(s) without result.json, e.g. {missing[0]}; finish it first (adarl-jax train "
            f"--workdir {workdir} with the same config)")
    return [done[k] for k in sorted(done)]


def _prepare_train_dir(train_dir: Path, plan: str) -> None:
    """A staging folder's checkpoints resume only the same training (config and epochs)."""
    path = train_dir / "plan.json"
    if path.is_file() and path.read_text() == plan:
        return
    if train_dir.exists():
        log.warning("%s holds another final training (other config or epochs): starting afresh",
                    train_dir)
        shutil.rmtree(train_dir)
    train_dir.mkdir(parents=True)
    write_text_atomic(path, plan)


def _record(config, dataset, fold, rule, trained, variables, workdir) -> dict:
    classes = list(config.data.classes)
    emotion = np.asarray(dataset.emotion)
    return {
        "format": FORMAT, "format_version": 1,
        "variant": config.model.variant, "classes": classes, "domains": list(config.data.genders),
        "input": {"shape": list(input_shape(config)), "sample_rate": int(config.data.sample_rate),
                  "segment_s": float(config.data.segment_s),
                  "min_tail_s": float(config.data.min_tail_s),
                  "segment_hop_s": float(config.data.segment_hop_s),
                  "trim_db": float(config.data.trim_db),
                  "level_dbfs": float(config.data.get("level_dbfs", 0.0)),
                  "frontend": config.frontend.to_dict()},
        "epochs": {**rule, "schedule": "the LOSO run's learning-rate schedule, stopped after "
                   f"{rule['epochs']} epoch(s)"},
        "training": {"speakers": list(fold.train_speakers), "utterances": len(dataset.utterances),
                     "utterances_per_class": {c: int(np.sum(emotion == i))
                                              for i, c in enumerate(classes)},
                     "unlabelled_utterances": int(np.sum(emotion < 0)),
                     "steps": int(jax.device_get(trained.state.step)),
                     "seed": int(config.train.seed), "run_index": fold.index,
                     "time_s": round(time.time() - trained.t0, 2)},
        "corpus": {"name": config.data.corpus, "folder": os.path.abspath(corpus_dir(config))},
        "loso_workdir": os.path.abspath(workdir),
        "parameters": param_counts(variables["params"])["total"],
        "adarl_jax_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def late_fusion_files(config, dataset, workdir: Path, progress: bool = True,
                      extractor=None, extractor_id: str | None = None) -> tuple[dict, dict | None]:
    """({'late_fusion.npz': bytes}, model.json's `late_fusion`) for a final model of the late
    fusion's CNN (adarl_jax.report.late_fusion: `adarl`, speaker-normalised): per openSMILE set,
    the per-speaker SVM and the globally standardised one (for small speaker groups,
    `GLOBAL_BELOW`), both fitted on every speaker (`baselines.opensmile.fit_final_svm`; the
    workdir's functionals cache serves them). ({}, None) for any other model, or without
    openSMILE (a warning: the folder then holds the CNN alone)."""
    from adarl_jax.baselines.opensmile import fit_final_svm, opensmile_available
    from adarl_jax.inference.late_fusion import LATE_FUSION_FILE, FunctionalsSVM, svms_bytes
    from adarl_jax.report.late_fusion import CNN, FUNCTIONALS, GLOBAL_BELOW

    if config.model.variant != CNN or config.frontend.normalize != "speaker":
        return {}, None
    if extractor is None and not opensmile_available():
        log.warning("the final model holds the CNN alone: the late fusion's SVMs need "
                    "openSMILE (pip install 'adarl-jax[baselines]')")
        return {}, None
    svms, fits = [], {}
    for fs in FUNCTIONALS:
        fitted = {norm: fit_final_svm(config, dataset.utterances, workdir / "cache", fs,
                                      extractor, extractor_id, progress, normalize=norm)
                  for norm in ("speaker", "global")}
        (model, info, (mean, std)), global_model = fitted["speaker"], fitted["global"][0]
        svms.append(FunctionalsSVM(fs, model, mean, std, global_model))
        fits[fs] = {k: info[k] for k in ("extractor", "C", "c_select", "n_fit")}
        fits[fs]["global_C"] = fitted["global"][1]["C"]
    return {LATE_FUSION_FILE: svms_bytes(svms)}, {
        "functionals": list(FUNCTIONALS), "svms": fits, "global_below": GLOBAL_BELOW,
        "combination": "the mean of the CNN's and each SVM's class probabilities",
        "normalisation": "each recording's functionals z-scored with its speaker group's "
                         "statistics, as its spectrogram, for the per-speaker SVMs; a group of "
                         f"fewer than {GLOBAL_BELOW} recordings, or the training speakers' "
                         "statistics, takes the globally standardised SVMs instead"}


def train_final(config, loso_workdir, out_dir, mesh=None, progress: bool = True,
                overwrite: bool = False, dataset=None, members: int = 1,
                late_fusion: bool = True) -> dict:
    """Trains the final model of `config.model.variant` and writes its folder `out_dir`;
    returns its model.json record. `members` > 1: a seed ensemble, that many models trained
    alike with train.seed, seed + 1, ..., their parameters stacked on a leading axis and their
    class probabilities averaged by `Predictor` (model.json's `ensemble`). Raises ValueError when the LOSO run in `loso_workdir` has
    not finished for that variant or was trained with another config, FileExistsError when
    `out_dir` already holds a model (unless `overwrite`), locks.WorkdirLockedError when another
    live run writes `out_dir` (its lock `.<name>.lock` beside it is held throughout; a staging
    folder left beside a complete model is removed, one without a model resumes). `dataset`: what
    `data.reading.load_dataset(config, loso_workdir)` returns, when the caller has read it already
    (see `loso.reads_same_data`); default: read here. `late_fusion`: the late fusion's CNN
    also gets its SVMs (`late_fusion_files`), the folder then serving the fused system."""
    out_dir = Path(out_dir)
    lock = FolderLock(out_dir).acquire() if jax.process_index() == 0 else None
    try:
        return _train_final(config, loso_workdir, out_dir, mesh, progress, overwrite, dataset,
                            members, late_fusion)
    finally:
        if lock is not None:
            lock.release()


def _clear_leftover_staging(out_dir: Path, overwrite: bool) -> None:
    """A staging folder beside a complete model is what a run killed after the rename left
    (or a replacement's training when `overwrite`, which resumes): removed unless replacing."""
    staging = staging_dir(out_dir)
    if staging.exists() and (out_dir / MODEL_FILE).is_file() and not overwrite:
        log.warning("%s: removing what an earlier run left beside the complete model %s",
                    staging, out_dir)
        shutil.rmtree(staging)


def _train_final(config, loso_workdir, out_dir: Path, mesh, progress, overwrite, dataset,
                 members: int, late_fusion: bool) -> dict:
    """train_final under the model folder's lock."""
    if int(members) < 1:
        raise ValueError(f"an ensemble needs at least 1 member, not {members}")
    workdir = Path(loso_workdir)
    if jax.process_index() == 0:
        _clear_leftover_staging(out_dir, overwrite)
    check_target(out_dir, overwrite)
    config = config.copy_and_resolve_references()
    keep_variant_file(config, workdir)  # the LOSO run's copy (the same file: the same copy)
    pinning.check_workdir_config(config, workdir)
    config.train.selection = "last"
    if dataset is None:
        dataset = load_dataset(config, workdir, progress)
    collected = collect_systems(workdir)
    results = _finished_results(config, workdir, dataset, collected)
    rule = epochs_rule(results)
    fold = every_speaker_fold(dataset.utterances, index=max(r["fold"] for r in results) + 1)
    check_domains(config, dataset, [fold])
    is_writer = jax.process_index() == 0
    seeds = [int(config.train.seed) + k for k in range(int(members))]
    member_variables, first, programs = [], None, Programs()  # members share their programs
    for k, seed in enumerate(seeds):
        member = config.copy_and_resolve_references()
        member.train.seed = seed
        train_dir = staging_dir(out_dir) / ("train" if members == 1 else f"train_{k}")
        if is_writer:
            _prepare_train_dir(train_dir, json.dumps({"config": json.loads(to_json(member)),
                                                      "epochs": rule["epochs"]}, indent=1))
        label = "final model" if members == 1 else f"final model, member {k + 1}/{members}"
        run = setup_run(member, dataset, fold, checked_mesh(member, mesh), label=label,
                        programs=programs)
        with open_checkpoints(member, train_dir) as ckpts:
            start = resume(member, run, ckpts, epochs=rule["epochs"])
            trained = train_epochs(member, dataset, fold, run, ckpts, start, progress and is_writer)
        member_variables.append(jax.device_get(trained.state.eval_variables))
        if first is None:  # the record's steps and time are the first member's
            first = trained
    variables = member_variables[0]
    record = _record(config, dataset, fold, rule, first, variables, workdir)
    if members > 1:
        variables = jax.tree.map(lambda *xs: np.stack(xs), *member_variables)
        record.update(format_version=ENSEMBLE_FORMAT_VERSION, ensemble={
            "members": int(members), "seeds": seeds,
            "combination": "the mean of the members' class probabilities"})
    extra, fusion = (late_fusion_files(config, dataset, workdir, progress and is_writer)
                     if late_fusion and is_writer else ({}, None))
    if fusion is not None:
        record.update(format_version=LATE_FUSION_FORMAT_VERSION, late_fusion=fusion)
    others = {v: rs for v, rs in collected.items() if v != config.model.variant}
    card = model_card(record, results, others)
    if is_writer:
        statistics = (training_statistics(dataset, fold.train)
                      if config.frontend.normalize == "speaker" else None)
        record = write_model_folder(out_dir, config, variables, record, card, overwrite,
                                    statistics, extra)
    return record
