"""Leave-one-speaker-out over variants and folds: the `train` and `reproduce` jobs.

`run_folds` is the one fold loop of every runner (the neural variants here, the openSMILE
baselines in adarl_jax.baselines): it alone decides that a finished fold is skipped or must
run again, writes result.json and prints the fold's progress line.

Layout of a workdir:
  W/config.json                         the config of the run: the workdir's identity
                                        (adarl_jax.pinning; another config is refused)
  W/cache/<hash>/                       spectrogram segments (adarl_jax.dataset)
  W/<variant>/fold_<k>_<speaker>/       config.json, checkpoints/, metrics.jsonl, result.json
                                        (named and found by adarl_jax.workdir)
  W/data.json                           the recordings' fingerprint (adarl_jax.data_fingerprint;
                                        other recordings are refused)
  W/.locks/fold_<k>.lock                held by the run training fold k (adarl_jax.locks)
  W/superseded-<time>/                  what an earlier config trained (--force-new-config)
  W/results.json, W/report.md           written by `report` (adarl_jax.report)
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path

import jax

from adarl_jax import pinning, sharding
from adarl_jax.config import default_data_dir, input_shape
from adarl_jax.corpora import (check_domain_values, load_corpus, manifest_path, select_classes,
                               stratified_subset)
from adarl_jax.corpus_sources import read_sources
from adarl_jax.data_fingerprint import check_fingerprint
from adarl_jax.dataset import prepare_dataset
from adarl_jax.files import read_json, write_json_atomic
from adarl_jax.folds import config_folds
from adarl_jax.locks import FoldLocks, WorkdirLockedError, describe, live_foreign_locks
from adarl_jax.model import build_model, init_variables, param_counts, variant_of
from adarl_jax.pinning import ConfigMismatchError  # noqa: F401  (raised here, for callers)
from adarl_jax.trainer import checked_mesh, run_fold as train_and_test
from adarl_jax.workdir import fold_dir, result_path

log = logging.getLogger(__name__)


def corpus_dir(config) -> str:
    """The corpus folder the config reads: data.dir, else the manifest's folder, else the
    corpus's default location ('' when there is none)."""
    d = config.data
    return d.dir or (os.path.dirname(d.manifest) if d.manifest else default_data_dir(d.corpus))


def read_utterances(config, need_domain: bool | None = None) -> list:
    """The utterances of the corpus named by the config, as every runner reads them: its
    classes (others kept, unlabelled, under data.other_emotions='domain_only') and at most
    data.max_utterances of them.

    A CSV manifest's domain label is its column `data.domain_column`; `need_domain` (default:
    the variant's registry `uses_domain`) requires it, else a manifest without it reads with
    domain -1 (unknown).
    """
    data_dir = corpus_dir(config)
    if not data_dir:
        raise FileNotFoundError(
            f"no data folder for corpus {config.data.corpus!r}: pass --data DIR")
    column = config.data.domain_column
    need = variant_of(config).uses_domain if need_domain is None else need_domain
    utterances = load_corpus(config.data.corpus, data_dir, config.data.manifest,
                             domain_column=column, need_domain=need)
    if need and config.data.corpus == "csv":
        check_domain_values(utterances, manifest_path(data_dir, config.data.manifest), column,
                            config.model.variant)
    utterances = select_classes(utterances, config.data.classes,
                                keep_others=config.data.other_emotions == "domain_only")
    utterances = read_sources(config, utterances, need)  # data.extra, data.test
    if config.data.max_utterances:
        utterances = stratified_subset(utterances, int(config.data.max_utterances))
    return utterances


def load_dataset(config, workdir, progress: bool = True):
    """The corpus named by the config (`read_utterances`) as cached spectrogram segments,
    prepared or loaded (adarl_jax.dataset), once its recordings are found to be the ones the
    workdir was trained on (adarl_jax.data_fingerprint; DataMismatchError if not)."""
    return load_checked_dataset(config, workdir, progress)[0]


def load_checked_dataset(config, workdir, progress: bool = True, force_new_config: bool = False):
    """`load_dataset`, which with `force_new_config` accepts other recordings than the
    workdir's: (dataset, the differences in words, or None)."""
    utterances = read_utterances(config)
    changed = check_fingerprint(workdir, utterances, force_new_config,
                                write=jax.process_index() == 0)
    return prepare_dataset(config, utterances, Path(workdir) / "cache", progress=progress), changed


def data_change(changed: str) -> tuple:
    """A changed data fingerprint as one of pinning's (field, old, new) differences."""
    return ("data", "the recordings in data.json", changed)


def check_domains(config, dataset, folds) -> None:
    """A variant with a domain head (gender by default) needs two domain values or more among
    each fold's training speakers, and a known domain for every utterance."""
    if not variant_of(config).uses_domain:
        return
    column = config.data.domain_column
    if (dataset.domain < 0).any():
        raise ValueError(
            f"model.variant={config.model.variant!r} trains a domain classifier on the column "
            f"{column!r}, but the corpus was read without it (domain unknown); read it again "
            f"for this variant (data.domain_column={column!r})")
    for fold in folds:
        present = set(dataset.domain[fold.train].tolist())
        if len(present) < 2:
            what = ("gender only; use model.variant='backbone' for single-gender data"
                    if column == "gender" else f"{column} value only; use model.variant='backbone'"
                    " or another data.domain_column")
            raise ValueError(
                f"model.variant={config.model.variant!r} trains a {column} (domain) classifier, but "
                f"fold {fold.index} (test speaker {fold.test_speaker}) has training data of one "
                + what)


def save_run_config(config, workdir, force_new_config: bool = False) -> list:
    """Pins the workdir's config (adarl_jax.pinning): refuses a run whose config differs from
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


def _prepare(config, workdir, folds, mesh, progress, baselines, force_new_config):
    workdir = Path(workdir)
    checked_mesh(config, mesh)  # before the corpus is read: a batch that does not split fails
    workdir.mkdir(parents=True, exist_ok=True)
    diffs = save_run_config(config, workdir, force_new_config)
    dataset, changed = load_checked_dataset(config, workdir, progress, force_new_config)
    if changed:
        diffs = [*diffs, data_change(changed)]
    chosen = config_folds(config, dataset.utterances, folds)
    held = take_fold_locks(config, workdir, chosen, diffs)
    results = []
    try:
        if baselines:
            from adarl_jax.baselines import run_baselines

            for records in run_baselines(config, workdir, feature_sets=tuple(baselines),
                                         folds=folds, utterances=dataset.utterances,
                                         progress=progress,
                                         write=jax.process_index() == 0).values():
                results.extend(records)
    except BaseException:
        if held is not None:
            held.release()
        raise
    return dataset, chosen, results, held


def prepare(config, workdir, folds: str | None = None, mesh=None, progress: bool = True,
            baselines=(), force_new_config: bool = False):
    """What every fold needs first: the workdir's pinned config (see `save_run_config`), the
    cached dataset, the folds, their locks (adarl_jax.locks; held until this process exits, so
    that the worker processes it starts inherit them), and the openSMILE baselines
    (`baselines`: 'egemaps', 'compare'; skipped with a message when the optional `opensmile`
    package is missing). Returns (dataset, chosen folds, baseline results).
    """
    dataset, chosen, results, held = _prepare(config, workdir, folds, mesh, progress, baselines,
                                              force_new_config)
    if held is not None:
        atexit.register(held.release)
    return dataset, chosen, results


def run(config, workdir, folds: str | None = None, variants=None, mesh=None,
        progress: bool = True, baselines=(), force_new_config: bool = False) -> list[dict]:
    """Trains and tests the requested variants x folds; returns their result records (the
    baselines' first, see `prepare`). The folds' locks are released at the end."""
    return run_job(config, workdir, folds, variants, mesh, progress, baselines,
                   force_new_config)[0]


def run_job(config, workdir, folds: str | None = None, variants=None, mesh=None,
            progress: bool = True, baselines=(), force_new_config: bool = False):
    """`run`, returning (result records, the dataset it read)."""
    workdir = Path(workdir)
    mesh = mesh or sharding.make_mesh()
    dataset, chosen, results, held = _prepare(config, workdir, folds, mesh, progress, baselines,
                                              force_new_config)
    try:
        results += train_variants(config, workdir, dataset, chosen, variants, mesh, progress)
    finally:
        if held is not None:
            held.release()
    return results, dataset


def reads_same_data(loaded_config, config) -> bool:
    """Whether `load_dataset(config, ...)` reads what `load_dataset(loaded_config, ...)` read:
    the same data and frontend sections, and the domain column required by `config`'s variant
    only if `loaded_config`'s required it too (a dataset read without it may lack domains)."""
    return (loaded_config.data.to_dict() == config.data.to_dict()
            and loaded_config.frontend.to_dict() == config.frontend.to_dict()
            and (variant_of(loaded_config).uses_domain or not variant_of(config).uses_domain))


def run_folds(workdir, variant: str, folds, run_fold, *, check=None, outdated=None,
              describe=None, label: str | None = None, progress: bool = True,
              write: bool = True) -> list[dict]:
    """The one fold loop of every runner: for each fold, in W/<variant>/fold_<k>_<speaker>
    (adarl_jax.workdir), its stored result when it has finished, else `run_fold(fold,
    folder)`'s, written to result.json when `write` (on one process of a multi-process job
    only); one progress line per fold when `progress`. Returns the records, by fold.

    `check(folder)` runs first for every fold, finished or not (the fold's config pinning);
    `outdated(result)` says why a finished fold must run again (None: it stands);
    `describe(result)` is its progress line after '[label] fold k (speaker): ' (default: the
    test scores, the domain accuracy and the training time; label: the variant)."""
    results = []
    for fold in folds:
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
                   progress: bool = True) -> list[dict]:
    """Trains and tests `variants` (default: the config's) on the `chosen` folds of a prepared
    `dataset` (see `prepare`); returns their result records, variant by variant."""
    mesh = mesh or sharding.make_mesh()
    is_writer = jax.process_index() == 0
    results = []
    for variant in variants or [config.model.variant]:
        vconfig = config.copy_and_resolve_references()
        vconfig.model.variant = variant
        check_domains(vconfig, dataset, chosen)
        _print_param_counts(vconfig)
        results += run_folds(
            workdir, variant, chosen,
            lambda fold, fdir, c=vconfig: train_and_test(c, dataset, fold, fdir, mesh, progress),
            check=lambda fdir, c=vconfig: pinning.pin_fold_config(c, fdir, write=is_writer),
            write=is_writer)
    return results


def _print_param_counts(vconfig) -> None:
    # shapes only (no compilation): the fold builds the real parameters
    counts = param_counts(jax.eval_shape(lambda: init_variables(
        build_model(vconfig), input_shape(vconfig), jax.random.key(0, impl="rbg")))["params"])
    print(f"[{vconfig.model.variant}] trainable parameters: {counts['total']:,} "
          f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if k != 'total')})", flush=True)
