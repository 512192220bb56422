"""Speed perturbation for training (`augment.speeds`; Ko et al., 2015): every recording of the
corpus also played at each listed speed (resampled waveforms: duration / speed, pitch and
formants x speed), cached beside the corpus's own features under its own key, and each copy
standardised by its own statistics under `frontend.normalize` (per (speaker, speed) under
'speaker': a perturbed speaker is a new speaker, as a test speaker is).

A run reads the copies of its training speakers alone: their segments in memory, standardised
there; a test or validation speaker's copy is never read, and a cross-corpus test corpus
(data.test) is never copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from adarl_jax.data.corpus_sources import test_source
from adarl_jax.data.dataset import (SegmentDataset, prepare_dataset, standardised,
                                    utterance_subset)

__all__ = ["speeds_of", "build_speed_caches", "speed_copies", "copy_segments"]


def speeds_of(config) -> tuple[float, ...]:
    """augment.speeds as floats (() = off)."""
    return tuple(float(s) for s in config.augment.get("speeds", ()))


def _copied(config, dataset: SegmentDataset, speed: float, progress: bool) -> SegmentDataset:
    """The copy at `speed` of `dataset`'s utterances but a test corpus's, as the front end made
    it (memory-mapped from its cache, built when absent)."""
    if not dataset.cache_dir:
        raise ValueError("augment.speeds needs a dataset read from its feature cache "
                         "(dataset.cache_dir is empty)")
    test = test_source(config)
    utterances = [u for u in dataset.utterances if test is None or u.corpus != test.tag]
    return prepare_dataset(config, utterances, Path(dataset.cache_dir).parent, progress=progress,
                           speed=speed, standardise=False)


def build_speed_caches(config, dataset: SegmentDataset, progress: bool = True) -> None:
    """Each copy's cache, built now when absent (before worker processes start)."""
    for speed in speeds_of(config):
        _copied(config, dataset, speed, progress)


def speed_copies(config, dataset: SegmentDataset,
                 train_utts) -> Iterator[tuple[SegmentDataset, np.ndarray]]:
    """Per speed in augment.speeds: (the copy of the speakers of `dataset`'s utterances
    `train_utts`, all their recordings, standardised; the copy's segments of `train_utts`)."""
    speakers = {dataset.utterances[int(i)].speaker for i in train_utts}
    for speed in speeds_of(config):
        copy = _copied(config, dataset, speed, progress=False)
        theirs = [i for i, u in enumerate(copy.utterances) if u.speaker in speakers]
        copy = standardised(config, utterance_subset(copy, theirs))
        yield copy, copy_segments(dataset, copy, train_utts)


def copy_segments(dataset: SegmentDataset, copy: SegmentDataset, utts) -> np.ndarray:
    """The segments of `copy` that belong to `dataset`'s utterances `utts` (indices into
    `dataset.utterances`), matched by path: a file the copy could not use is left out."""
    where = {u.path: i for i, u in enumerate(copy.utterances)}
    own = [where[p] for p in (dataset.utterances[int(i)].path for i in utts) if p in where]
    return copy.subset_segments(np.asarray(own, np.int64))
