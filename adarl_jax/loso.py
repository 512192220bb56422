"""Leave-one-speaker-out over variants and folds: the `train` and `reproduce` jobs.

Layout of a workdir:
  W/config.json                         the config of the run
  W/cache/<hash>/                       spectrogram segments (adarl_jax.dataset)
  W/<variant>/fold_<k>_<speaker>/       checkpoints/, metrics.jsonl, result.json
  W/results.json, W/report.md           written by `report` (adarl_jax.report)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import jax

from adarl_jax import dataset as D
from adarl_jax import sharding
from adarl_jax.config import config_from_json, default_data_dir, input_shape, to_json
from adarl_jax.corpora import load_corpus, select_classes, stratified_subset
from adarl_jax.files import write_text_atomic
from adarl_jax.folds import loso_folds, parse_folds
from adarl_jax.model import build_model, get_variant, init_variables, param_counts
from adarl_jax.trainer import train_fold

log = logging.getLogger(__name__)


def fold_dir(workdir, variant: str, fold) -> Path:
    return Path(workdir) / variant / f"fold_{fold.index:02d}_{fold.test_speaker}"


def load_dataset(config, workdir, progress: bool = True):
    """Reads the corpus named by the config and prepares (or loads) its cached segments."""
    data_dir = config.data.dir or (os.path.dirname(config.data.manifest) if config.data.manifest
                                   else default_data_dir(config.data.corpus))
    if not data_dir:
        raise FileNotFoundError(
            f"no data folder for corpus {config.data.corpus!r}: pass --data DIR")
    utterances = load_corpus(config.data.corpus, data_dir, config.data.manifest)
    utterances = select_classes(utterances, config.data.classes,
                                keep_others=config.data.other_emotions == "domain_only")
    if config.data.max_utterances:
        utterances = stratified_subset(utterances, int(config.data.max_utterances))
    return D.prepare_dataset(config, utterances, Path(workdir) / "cache", progress=progress)


def check_domains(config, dataset, folds) -> None:
    """A variant with a gender head needs both genders among each fold's training speakers."""
    if not get_variant(config.model.variant).uses_domain:
        return
    for fold in folds:
        present = set(dataset.gender[fold.train].tolist())
        if len(present) < 2:
            raise ValueError(
                f"model.variant={config.model.variant!r} trains a gender (domain) classifier, but "
                f"fold {fold.index} (test speaker {fold.test_speaker}) has training data of one "
                f"gender only; use model.variant='backbone' for single-gender data")


def save_run_config(config, workdir) -> None:
    path = Path(workdir) / "config.json"
    if path.exists():
        old = config_from_json(path.read_text())
        for section in ("data", "frontend"):
            if old[section].to_dict() != config[section].to_dict():
                log.warning("%s: the %s config differs from the one saved in this workdir",
                            path, section)
    if jax.process_index() == 0:
        write_text_atomic(path, to_json(config))


def prepare(config, workdir, folds: str | None = None, mesh=None, progress: bool = True,
            baselines=()):
    """What every fold needs first: the workdir's config, the cached dataset, the folds, and the
    openSMILE baselines (`baselines`: 'egemaps', 'compare'; skipped with a message when the
    optional `opensmile` package is missing). Returns (dataset, chosen folds, baseline results).
    """
    workdir = Path(workdir)
    mesh = mesh or sharding.make_mesh()
    # before the corpus is read: a batch that does not split over the devices fails at once
    sharding.check_batch_size(int(config.optim.batch_size), mesh)
    sharding.check_batch_size(int(config.train.eval_batch_size), mesh, "train.eval_batch_size")
    workdir.mkdir(parents=True, exist_ok=True)
    save_run_config(config, workdir)
    dataset = load_dataset(config, workdir, progress)
    all_folds = loso_folds(dataset.utterances, int(config.train.val_speakers_per_gender)
                           if config.train.selection == "val" else 0, int(config.train.split_seed))
    chosen = [all_folds[i] for i in parse_folds(folds, len(all_folds))]
    results = []
    if baselines:
        from adarl_jax.baselines import run_baselines

        for records in run_baselines(config, workdir, feature_sets=tuple(baselines), folds=folds,
                                     utterances=dataset.utterances, progress=progress,
                                     write=jax.process_index() == 0).values():
            results.extend(records)
    return dataset, chosen, results


def run(config, workdir, folds: str | None = None, variants=None, mesh=None,
        progress: bool = True, baselines=()) -> list[dict]:
    """Trains and tests the requested variants x folds; returns their result records (the
    baselines' first, see `prepare`)."""
    workdir = Path(workdir)
    mesh = mesh or sharding.make_mesh()
    dataset, chosen, results = prepare(config, workdir, folds, mesh, progress, baselines)
    for variant in variants or [config.model.variant]:
        vconfig = config.copy_and_resolve_references()
        vconfig.model.variant = variant
        check_domains(vconfig, dataset, chosen)
        # shapes only (no compilation): the fold builds the real parameters
        counts = param_counts(jax.eval_shape(lambda: init_variables(
            build_model(vconfig), input_shape(vconfig), jax.random.key(0, impl="rbg")))["params"])
        print(f"[{variant}] trainable parameters: {counts['total']:,} "
              f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if k != 'total')})", flush=True)
        for fold in chosen:
            result = train_fold(vconfig, dataset, fold, fold_dir(workdir, variant, fold), mesh, progress)
            t = result["test"]
            print(f"[{variant}] fold {fold.index} ({fold.test_speaker}): WA {t['wa']:.3f} UA {t['ua']:.3f}"
                  + (f" gender {t['gender_accuracy']:.2f}" if "gender_accuracy" in t else "")
                  + f" ({result['train_time_s']:.0f} s)", flush=True)
            results.append(result)
    return results
