"""Reading the corpus a config names, the one way every job reads it: its folder, its
utterances (classes, domain column, size limit), their cached spectrogram segments, and the
checks a variant with a domain head needs of them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax

from adarl_jax.config import default_data_dir
from adarl_jax.data.corpora import (check_domain_values, load_corpus, manifest_path, select_classes,
                                    stratified_subset)
from adarl_jax.data.corpus_sources import read_sources
from adarl_jax.data.dataset import prepare_dataset
from adarl_jax.data.speed import build_speed_caches
from adarl_jax.workdir.fingerprint import check_fingerprint
from adarl_jax.model import variant_of

__all__ = ["corpus_dir", "read_utterances", "load_dataset", "load_checked_dataset", "data_change",
           "check_domains", "reads_same_data", "with_domain", "DOMAINS"]


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
    utterances = with_domain(config, utterances)
    if config.data.max_utterances:
        utterances = stratified_subset(utterances, int(config.data.max_utterances))
    return utterances


DOMAINS = ("column", "corpus", "corpus_column")  # config.data.domain


def with_domain(config, utterances: list) -> list:
    """The utterances with the domain label data.domain asks for: the domain column's value
    ('column', as read), the utterance's corpus ('corpus') or both ('corpus_column':
    '<corpus>/<value>', unknown where the value is)."""
    how = config.data.get("domain", "column")
    if how == "column":
        return utterances
    if how == "corpus":
        return [dataclasses.replace(u, domain=u.corpus) for u in utterances]
    if how == "corpus_column":
        return [dataclasses.replace(u, domain=None if u.domain is None else f"{u.corpus}/{u.domain}")
                for u in utterances]
    raise ValueError(f"data.domain={how!r}: expected one of {', '.join(DOMAINS)}")


def load_dataset(config, workdir, progress: bool = True):
    """The corpus named by the config (`read_utterances`) as cached spectrogram segments,
    prepared or loaded (adarl_jax.data.dataset), once its recordings are found to be the ones
    the workdir was trained on (adarl_jax.workdir.fingerprint; DataMismatchError if not)."""
    return load_checked_dataset(config, workdir, progress)[0]


def load_checked_dataset(config, workdir, progress: bool = True, force_new_config: bool = False):
    """`load_dataset`, which with `force_new_config` accepts other recordings than the
    workdir's: (dataset, the differences in words, or None)."""
    utterances = read_utterances(config)
    changed = check_fingerprint(workdir, utterances, force_new_config,
                                write=jax.process_index() == 0)
    dataset = prepare_dataset(config, utterances, Path(workdir) / "cache", progress=progress)
    build_speed_caches(config, dataset, progress)  # here, before any worker process starts
    return dataset, changed


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


def reads_same_data(loaded_config, config) -> bool:
    """Whether `load_dataset(config, ...)` reads what `load_dataset(loaded_config, ...)` read:
    the same data and frontend sections, and the domain column required by `config`'s variant
    only if `loaded_config`'s required it too (a dataset read without it may lack domains)."""
    return (loaded_config.data.to_dict() == config.data.to_dict()
            and loaded_config.frontend.to_dict() == config.frontend.to_dict()
            and (variant_of(loaded_config).uses_domain or not variant_of(config).uses_domain))
