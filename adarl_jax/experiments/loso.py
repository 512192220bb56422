"""Leave-one-speaker-out over variants and folds: the `train` and `reproduce` jobs.

`run_folds` is the one fold loop of every runner (the neural variants here, the openSMILE
baselines in adarl_jax.baselines.opensmile): it alone decides that a finished fold is skipped or must
run again, writes result.json and prints the fold's progress line.

Layout of a workdir:
  W/config.json                         the config of the run: the workdir's identity
                                        (adarl_jax.workdir.pinning; another config is refused)
  W/cache/<hash>/                       spectrogram segments (adarl_jax.data.dataset)
  W/<variant>/fold_<k>_<speaker>/       config.json, checkpoints/, metrics.jsonl, result.json
                                        (named and found by adarl_jax.workdir.layout)
  W/data.json                           the recordings' fingerprint (adarl_jax.workdir.fingerprint;
                                        other recordings are refused)
  W/.locks/fold_<k>.lock                held by the run training fold k (adarl_jax.workdir.locks)
  W/superseded-<time>/                  what an earlier config trained (--force-new-config)
  W/results.json, W/report.md           written by `report` (adarl_jax.report.report)
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

import jax

from adarl_jax.config import input_shape
from adarl_jax.data.folds import config_folds
from adarl_jax.data.functionals import attach_functionals, functionals_dim
from adarl_jax.data.reading import check_domains, data_change, load_checked_dataset, load_dataset
from adarl_jax.model import build_model, init_variables, param_counts
from adarl_jax.model.registry import use_variant
from adarl_jax.train import sharding
from adarl_jax.train.programs import Programs
from adarl_jax.train.sharding import checked_mesh
from adarl_jax.train.trainer import run_fold as train_and_test
from adarl_jax.workdir.kept_variant import keep_variant_file
from adarl_jax.workdir import pinning
from adarl_jax.workdir.files import read_json, write_json_atomic
from adarl_jax.workdir.layout import fold_dir, result_path
from adarl_jax.workdir.locks import FoldLocks, WorkdirLockedError, describe, live_foreign_locks
from adarl_jax.workdir.pinning import ConfigMismatchError  # noqa: F401  (raised here, for callers)

log = logging.getLogger(__name__)


def save_run_config(config, workdir, force_new_config: bool = False) -> list:
    """Pins the workdir's config (adarl_jax.workdir.pinning): refuses a run whose config differs from
    the saved one, unless `force_new_config`, and writes it when there is none. Returns the
    differences (non-empty only when forced: the caller moves the old folds aside first)."""
    diffs = pinning.check_workdir_config(config, workdir, force_new_config)
    if not diffs and jax.process_index() == 0:
        pinning.write_workdir_config(config, workdir)
    return diffs


def take_fold_locks(config, workdir, chosen, diffs):
    """Locks the chosen folds (process 0 only: one job is one writer); with a forced new config,
    moves what the old config trained aside, once no other run is at work in the workdir."""
    if jax.process_index() != 0:
        return None
    held = FoldLocks(workdir, [f.index for f in chosen]).acquire()
    if diffs:
        try:
            others = live_foreign_locks(workdir)
            if others:
                raise WorkdirLockedError(
                    f"--force-new-config would move aside folds that another run is training in "
                    f"{workdir}: " + "; ".join(f"fold {k} by {describe(o)}"
                                              for k, o in sorted(others.items())))
            moved = pinning.supersede(workdir)
            pinning.write_workdir_config(config, workdir)
        except BaseException:
            held.release()
            raise
        print(f"--force-new-config: the config changed ({pinning.format_differences(diffs)}); "
              f"what the old config trained is now in {moved}", flush=True)
    return held


def _prepare(config, workdir, folds, mesh, progress, first, force_new_config):
    workdir = Path(workdir)
    checked_mesh(config, mesh)  # before the corpus is read: a batch that does not split fails
    workdir.mkdir(parents=True, exist_ok=True)
    keep_variant_file(config, workdir)  # the run loads the workdir's copy from here on
    diffs = save_run_config(config, workdir, force_new_config)
    dataset, changed = load_checked_dataset(config, workdir, progress, force_new_config)
    if changed:
        diffs = [*diffs, data_change(changed)]
    chosen = config_folds(config, dataset.utterances, folds)
    held = take_fold_locks(config, workdir, chosen, diffs)
    results = []
    try:
        if first is not None:
            results.extend(first(dataset))
    except BaseException:
        if held is not None:
            held.release()
        raise
    return dataset, chosen, results, held


def prepare(config, workdir, folds: str | None = None, mesh=None, progress: bool = True,
            first=None, force_new_config: bool = False):
    """What every fold needs first: the workdir's pinned config (see `save_run_config`), the
    cached dataset, the folds, their locks (adarl_jax.workdir.locks; held until this process exits, so
    that the worker processes it starts inherit them), then `first(dataset)` when given: what
    the job runs on the locked folds before the variants (the `reproduce` job's baselines),
    returning result records. Returns (dataset, chosen folds, `first`'s records).
    """
    dataset, chosen, results, held = _prepare(config, workdir, folds, mesh, progress, first,
                                              force_new_config)
    if held is not None:
        atexit.register(held.release)
    return dataset, chosen, results


def run(config, workdir, folds: str | None = None, variants=None, mesh=None,
        progress: bool = True, first=None, force_new_config: bool = False) -> list[dict]:
    """Trains and tests the requested variants x folds; returns their result records (`first`'s
    first, see `prepare`). The folds' locks are released at the end."""
    return run_job(config, workdir, folds, variants, mesh, progress, first,
                   force_new_config)[0]


def run_job(config, workdir, folds: str | None = None, variants=None, mesh=None,
            progress: bool = True, first=None, force_new_config: bool = False, claims=None):
    """`run`, returning (result records, the dataset it read). `claims`: as a worker of
    `--workers` (experiments.workers.Claims), the folds this process is first to claim only,
    the variant with the most parameters first."""
    workdir = Path(workdir)
    mesh = mesh or sharding.make_mesh()
    dataset, chosen, results, held = _prepare(config, workdir, folds, mesh, progress, first,
                                              force_new_config)
    try:
        results += train_variants(config, workdir, dataset, chosen, variants, mesh, progress,
                                  claims)
    finally:
        if held is not None:
            held.release()
    return results, dataset


def run_folds(workdir, variant: str, folds, run_fold, *, check=None, outdated=None,
              describe=None, label: str | None = None, progress: bool = True,
              write: bool = True, take=None) -> list[dict]:
    """The one fold loop of every runner: for each fold, in W/<variant>/fold_<k>_<speaker>
    (adarl_jax.workdir.layout), its stored result when it has finished, else `run_fold(fold,
    folder)`'s, written to result.json when `write` (on one process of a multi-process job
    only); one progress line per fold when `progress`. Returns the records, by fold.

    `check(folder)` runs first for every fold it handles, finished or not (the fold's config
    pinning);
    `outdated(result)` says why a finished fold must run again (None: it stands);
    `describe(result)` is its progress line after '[label] fold k (speaker): ' (default: the
    test scores, the domain accuracy and the training time; label: the variant);
    `take(fold)`, first: False skips the fold (another process of the job has it)."""
    results = []
    for fold in folds:
        if take is not None and not take(fold):
            continue
        out_dir = fold_dir(workdir, variant, fold)
        if check is not None:
            check(out_dir)
        result = _finished(out_dir, variant, fold, outdated)
        if result is None:
            result = run_fold(fold, out_dir)
            if write:
                write_json_atomic(result_path(out_dir), result)
        if progress:
            print(f"[{label or variant}] fold {fold.index} ({fold.test_speaker}): "
                  + (describe or _scores_and_time)(result), flush=True)
        results.append(result)
    return results


def fold_scores(result: dict) -> str:
    """'WA 0.812 UA 0.790': the start of a fold's progress line."""
    t = result["test"]
    return f"WA {t['wa']:.3f} UA {t['ua']:.3f}"


def _scores_and_time(result: dict) -> str:
    """The test scores, the domain accuracy when the model has a domain head, the time."""
    t = result["test"]
    domain = (f" {result.get('domain_column', 'gender')} {t['gender_accuracy']:.2f}"
              if "gender_accuracy" in t else "")
    return fold_scores(result) + domain + f" ({result['train_time_s']:.0f} s)"


def _finished(out_dir: Path, variant: str, fold, outdated) -> dict | None:
    """The fold's stored result when it has one that stands, else None (to run it)."""
    path = result_path(out_dir)
    if not path.exists():
        return None
    done = read_json(path)
    why = outdated(done) if outdated is not None else None
    if why is None:
        log.info("%s fold %d (%s): finished, skipping", variant, fold.index, fold.test_speaker)
        return done
    log.warning("%s fold %d (%s): %s", variant, fold.index, fold.test_speaker, why)
    return None


def train_variants(config, workdir, dataset, chosen, variants=None, mesh=None,
                   progress: bool = True, claims=None) -> list[dict]:
    """Trains and tests `variants` (default: the config's) on the `chosen` folds of a prepared
    `dataset` (see `prepare`); returns their result records, variant by variant. With
    `claims` (a worker of `--workers`), only the folds this process claims first, the
    variant with the most parameters first (a proxy for its folds' cost)."""
    mesh = mesh or sharding.make_mesh()
    is_writer = jax.process_index() == 0
    vconfigs = []
    for variant in variants or [config.model.variant]:
        vconfig = config.copy_and_resolve_references()
        use_variant(vconfig, variant)
        vconfigs.append((variant, vconfig, _param_counts(vconfig)))
    if claims is not None:
        vconfigs.sort(key=lambda vc: -vc[2]["total"])  # stable: ties keep the given order
    results = []
    for variant, vconfig, counts in vconfigs:
        check_domains(vconfig, dataset, chosen)
        attach_functionals(vconfig, dataset, progress)  # once, before its folds (when it reads them)
        print(f"[{variant}] trainable parameters: {counts['total']:,} "
              f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if k != 'total')})", flush=True)
        programs = Programs()  # the variant's folds share its train step and evaluator
        results += run_folds(
            workdir, variant, chosen,
            lambda fold, fdir, c=vconfig, p=programs: train_and_test(c, dataset, fold, fdir, mesh,
                                                                     progress, p),
            check=lambda fdir, c=vconfig: pinning.pin_fold_config(c, fdir, write=is_writer),
            write=is_writer,
            take=None if claims is None else lambda fold, v=variant: claims.take(v, fold.index))
    return results


def _param_counts(vconfig) -> dict:
    """The variant's trainable parameters by part, and their 'total': shapes only (no
    compilation; the fold builds the real parameters)."""
    return param_counts(jax.eval_shape(lambda: init_variables(
        build_model(vconfig), input_shape(vconfig), jax.random.key(0, impl="rbg"),
        functionals_dim(vconfig)))["params"])
