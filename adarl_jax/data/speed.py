"""Speed perturbation for training (`augment.speeds`; Ko et al., 2015): every recording of the
corpus also played at each listed speed (resampled waveforms: duration / speed, pitch and
formants x speed), cached like the corpus itself, and each copy standardised by its own
statistics under `frontend.normalize` (per (speaker, speed) under 'speaker': a perturbed
speaker is a new speaker, as a test speaker is). Only training utterances' copies are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adarl_jax.data.dataset import SegmentDataset, prepare_dataset

__all__ = ["speeds_of", "speed_copies", "copy_segments"]


def speeds_of(config) -> tuple[float, ...]:
    """augment.speeds as floats (() = off)."""
    return tuple(float(s) for s in config.augment.get("speeds", ()))


def speed_copies(config, dataset: SegmentDataset, progress: bool = False) -> list[SegmentDataset]:
    """One dataset per speed in augment.speeds, of `dataset`'s utterances, from the cache
    folder beside `dataset`'s (built there when absent)."""
    speeds = speeds_of(config)
    if not speeds:
        return []
    if not dataset.cache_dir:
        raise ValueError("augment.speeds needs a dataset read from its feature cache "
                         "(dataset.cache_dir is empty)")
    cache_root = Path(dataset.cache_dir).parent
    return [prepare_dataset(config, dataset.utterances, cache_root, progress=progress, speed=s)
            for s in speeds]


def copy_segments(dataset: SegmentDataset, copy: SegmentDataset, utts) -> np.ndarray:
    """The segments of `copy` that belong to `dataset`'s utterances `utts` (indices into
    `dataset.utterances`), matched by path: a file the copy could not use is left out."""
    where = {u.path: i for i, u in enumerate(copy.utterances)}
    own = [where[p] for p in (dataset.utterances[int(i)].path for i in utts) if p in where]
    return copy.subset_segments(np.asarray(own, np.int64))
