"""Spectrogram segments of a corpus, computed once by the front end and cached on disk.

Each utterance is read (`audio.load_audio`), cut into 3 s segments (`audio.segment`, Sec. 2.4)
and passed through the jit-compiled front end in fixed-size batches; the features are cached
on disk (adarl_jax.data.feature_cache: one memory-mapped `.npy` and JSON metadata, nothing pickled).

The cache key covers what the features depend on: the front-end config, the data fields that
shape the segments, and every file's (path, size, mtime). Labels are not part of it: they are
re-attached from the caller's utterances on every load, so relabelling a corpus, changing
`data.classes` or the domain column reuses the cached spectrograms. The domain label of an
utterance is its index in `data.genders` (the domain values), -1 when unknown.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from adarl_jax.data.audio import AudioError, iter_segments
from adarl_jax.data.corpora import Utterance
from adarl_jax.data.feature_cache import (CACHE_FORMAT, Batcher, Frontend, build, cache_key,  # noqa: F401
                                     cut_options, default_frontend, file_stamp, load_cached,
                                     min_samples_for, valid_frame_count)

__all__ = ["SegmentDataset", "prepare_dataset", "compute_features", "cache_key", "min_samples_for",
           "domain_labels"]

logger = logging.getLogger(__name__)


@dataclass
class SegmentDataset:
    features: np.ndarray  # (n_seg, F, T, 3) float32, usually a read-only memory map
    segment_utt: np.ndarray  # (n_seg,) int32 index into `utterances`
    segment_start_s: np.ndarray  # (n_seg,) float32
    utterances: list[Utterance]  # those with at least one segment (skipped files are left out)
    emotion: np.ndarray  # (n_utt,) int32 index in config.data.classes, -1 = unlabelled
    # (n_utt,) int32 domain label: index in config.data.genders (the domain values of
    # data.domain_column; gender by default), -1 = unknown. Also read as `domain`.
    gender: np.ndarray
    skipped: list[tuple[str, str]]  # (path, reason) of files that could not be used
    classes: tuple[str, ...] = ()
    cache_dir: str = ""  # the folder holding this dataset's features and metadata
    from_cache: bool = False
    segment_frames: np.ndarray | None = None  # (n_seg,) int32 valid frames (the rest are padding)
    # frontend.normalize='speaker'|'utterance': {group: (mean, std)} that standardised `features`
    # (the group is the speaker, or the utterance index), so the raw values can be recovered
    norm_stats: dict | None = None
    # a model that reads openSMILE functionals (adarl_jax.data.functionals.attach_functionals):
    # (n_utt, d) as the model reads them, the raw values, and the set's name
    functionals: np.ndarray | None = None
    functionals_raw: np.ndarray | None = None
    functionals_set: str = ""

    @property
    def domain(self) -> np.ndarray:
        """The domain label per utterance (the field keeps its historical name `gender`)."""
        return self.gender

    def subset_segments(self, utt_indices) -> np.ndarray:
        """Indices of the segments of the given utterances (sorted)."""
        mask = np.zeros(len(self.utterances), bool)
        mask[np.asarray(utt_indices, dtype=np.int64)] = True
        return np.flatnonzero(mask[self.segment_utt])

    def cache_bytes(self) -> int:
        if not self.cache_dir or not os.path.isdir(self.cache_dir):
            return 0
        return sum(e.stat().st_size for e in os.scandir(self.cache_dir) if e.is_file())

    def summary(self) -> dict:
        """Counts for a report: utterances and segments per class and per speaker, cache size."""
        names = list(self.classes) + ["unlabelled"]
        seg_class = self.emotion[self.segment_utt]
        speakers = [u.speaker for u in self.utterances]
        return {
            "n_utterances": len(self.utterances),
            "n_segments": int(len(self.segment_utt)),
            "n_skipped": len(self.skipped),
            "skipped": [list(s) for s in self.skipped],
            "utterances_per_class": _count(names[e] for e in self.emotion),
            "segments_per_class": _count(names[e] for e in seg_class),
            "utterances_per_speaker": _count(speakers),
            "segments_per_speaker": _count(speakers[i] for i in self.segment_utt),
            "feature_shape": list(self.features.shape),
            "cache_dir": self.cache_dir,
            "cache_bytes": self.cache_bytes(),
            "from_cache": self.from_cache,
        }


def _count(items: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(items).items()))


def _moments(total: np.ndarray, sq: np.ndarray, count: int, eps: float) -> tuple:
    """(mean (F, 1, C), std + eps (F, 1, C)) from float64 sums over `count` frames."""
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
    return mean[:, None, :], std[:, None, :] + eps


def speaker_statistics(features: np.ndarray, frames: np.ndarray, groups: np.ndarray,
                       eps: float = 1e-5) -> dict:
    """Mean and std (ddof 0) of each (frequency, channel) over the valid frames of each group.

    features (n, F, T, C), frames (n,) valid frame counts, groups (n,) hashable ids ->
    {group: (mean (F, 1, C), std + eps (F, 1, C))}, float64 sums over float32 features.
    """
    out = {}
    for g in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == g)
        total = np.zeros((features.shape[1], features.shape[3]))
        sq = np.zeros_like(total)
        count = 0
        for i in idx:
            x = np.asarray(features[i, :, :frames[i]], np.float64)
            total += x.sum(1)
            sq += np.square(x).sum(1)
            count += int(frames[i])
        out[g] = _moments(total, sq, count, eps)
    return out


def normalize_segments(features: np.ndarray, frames: np.ndarray, groups: np.ndarray,
                       stats: dict) -> np.ndarray:
    """(x - mean_g) / std_g per segment's group; frames past each segment's count set to 0."""
    out = np.zeros(features.shape, np.float32)
    for i in range(len(features)):
        mean, std = stats[groups[i]]
        n = int(frames[i])
        out[i, :, :n] = (np.asarray(features[i, :, :n], np.float64) - mean) / std
    return out


def normalization_groups(dataset: "SegmentDataset", normalize: str) -> np.ndarray:
    """Per segment, the group whose statistics standardise it: its speaker ('speaker') or its
    utterance ('utterance')."""
    if normalize == "utterance":
        return dataset.segment_utt.astype(np.int64)
    return np.array([u.speaker for u in dataset.utterances], dtype=object)[dataset.segment_utt]


def group_normalize(dataset: "SegmentDataset", normalize: str) -> "SegmentDataset":
    """frontend.normalize='speaker': each speaker's segments standardised per (frequency,
    channel) with that speaker's own statistics, in memory. Transductive: a test speaker's
    statistics come from its (unlabelled) audio; no label is read. 'utterance': each
    utterance's segments with that utterance's own statistics (what a user with one recording
    has; no other file is involved)."""
    groups = normalization_groups(dataset, normalize)
    stats = speaker_statistics(dataset.features, dataset.segment_frames, groups)
    return dataclasses.replace(dataset, norm_stats=stats, features=normalize_segments(
        dataset.features, dataset.segment_frames, groups, stats))


def standardised(config, dataset: "SegmentDataset") -> "SegmentDataset":
    """The dataset standardised as frontend.normalize asks: per speaker or per utterance here
    (`group_normalize`); 'segment' is the front end's own, so unchanged."""
    if config.frontend.normalize in ("speaker", "utterance"):
        return group_normalize(dataset, config.frontend.normalize)
    return dataset


def utterance_subset(dataset: "SegmentDataset", utt_indices) -> "SegmentDataset":
    """The dataset of the utterances `utt_indices` alone (in memory, re-indexed, as read:
    standardise it after)."""
    utt_indices = np.asarray(utt_indices, np.int64)
    segs = dataset.subset_segments(utt_indices)
    new_index = np.full(len(dataset.utterances), -1, np.int32)
    new_index[utt_indices] = np.arange(len(utt_indices), dtype=np.int32)
    return dataclasses.replace(
        dataset, features=np.asarray(dataset.features[segs], np.float32),
        segment_utt=new_index[dataset.segment_utt[segs]],
        segment_start_s=dataset.segment_start_s[segs],
        segment_frames=dataset.segment_frames[segs],
        utterances=[dataset.utterances[i] for i in utt_indices],
        emotion=dataset.emotion[utt_indices], gender=dataset.gender[utt_indices], norm_stats=None,
        functionals=None, functionals_raw=None, functionals_set="")


def speaker_normalize(dataset: "SegmentDataset") -> "SegmentDataset":
    """`group_normalize(dataset, 'speaker')`."""
    return group_normalize(dataset, "speaker")


def raw_segments(dataset: "SegmentDataset", segs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The front end's values of segments `segs` before their group's standardisation
    (x * std + mean on valid frames, 0 past them), from `dataset.norm_stats`."""
    out = np.zeros((len(segs), *dataset.features.shape[1:]), np.float32)
    for j, i in enumerate(segs):
        mean, std = dataset.norm_stats[groups[i]]
        n = int(dataset.segment_frames[i])
        out[j, :, :n] = np.asarray(dataset.features[i, :, :n], np.float64) * std + mean
    return out


def domain_labels(config, utterances: list[Utterance]) -> np.ndarray:
    """(n,) int32 index of each utterance's domain in config.data.genders (the domain
    values); -1 where the domain is unknown (None: a manifest without the domain column).
    A value not in the list is a ValueError naming the column and the values."""
    values = tuple(config.data.genders)
    column = config.data.get("domain_column", "gender")
    bad = sorted({u.domain for u in utterances if u.domain is not None and u.domain not in values})
    if bad:
        raise ValueError(f"{column} value(s) {', '.join(bad)} are not in config.data.genders "
                         f"{values} (the domain values of data.domain_column={column!r}); set "
                         f"data.genders to the values the corpus uses")
    return np.array([values.index(u.domain) if u.domain is not None else -1 for u in utterances],
                    np.int32)


def _labels(config, utterances: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    classes = tuple(config.data.classes)
    unknown = sorted({u.emotion for u in utterances if u.emotion is not None and u.emotion not in classes})
    if unknown:
        raise ValueError(
            f"emotion(s) {', '.join(unknown)} are not in config.data.classes {classes}; "
            "filter the utterances with corpora.select_classes first"
        )
    emotion = np.array([classes.index(u.emotion) if u.emotion is not None else -1 for u in utterances], np.int32)
    return emotion, domain_labels(config, utterances)


def _check_paths(utterances: list[Utterance]) -> list[str]:
    paths = [os.path.abspath(u.path) for u in utterances]
    dup = [p for p, n in Counter(paths).items() if n > 1]
    if dup:
        raise ValueError(f"utterance path(s) listed twice: {', '.join(dup[:5])}")
    return paths


def _segment_index(meta: dict, paths: list[str]):
    """(kept utterance indices, segment -> kept utterance, start s, valid frames) from the
    cache's metadata; files the cache skipped are left out."""
    entry = {f["path"]: f for f in meta["files"]}
    kept = [i for i, p in enumerate(paths) if p in entry]
    seg_utt = np.zeros((meta["n_segments"],), np.int32)
    seg_start = np.zeros((meta["n_segments"],), np.float32)
    seg_frames = np.zeros((meta["n_segments"],), np.int32)
    for new_index, i in enumerate(kept):
        f = entry[paths[i]]
        rows = slice(f["first"], f["first"] + len(f["starts_s"]))
        seg_utt[rows] = new_index
        seg_start[rows] = f["starts_s"]
        seg_frames[rows] = f["frames"]
    return kept, seg_utt, seg_start, seg_frames


def _open_cache(config, paths, cache_dir, frontend, progress, batch_size, speed):
    """(features, metadata, folder, from_cache): the cache of `paths`, built when absent."""
    key = cache_key(config, paths, speed)
    folder = os.path.join(os.fspath(cache_dir), key[:16])
    feature_shape = (int(config.frontend.n_bins), int(config.frontend.n_frames), 3)
    cached = load_cached(folder, key, feature_shape)
    from_cache = cached is not None
    if cached is None:
        os.makedirs(folder, exist_ok=True)
        build(config, sorted(paths), folder, key, feature_shape, frontend, progress, batch_size,
              speed)
        cached = load_cached(folder, key, feature_shape)
        if cached is None:
            raise RuntimeError(f"feature cache {folder} could not be read back after writing it")
    return (*cached, folder, from_cache)


def prepare_dataset(
    config,
    utterances: list[Utterance],
    cache_dir,
    frontend: Frontend | None = None,
    progress: bool = True,
    batch_size: int = 32,
    speed: float = 1.0,
    standardise: bool = True,
) -> SegmentDataset:
    """Segments and spectrograms of `utterances`, from cache_dir/<key[:16]>/ when there;
    `speed` != 1: of the recordings played that much faster (`audio.load_audio`);
    `standardise=False`: as the front end made them (frontend.normalize not applied).

    `frontend(waves (B, L), lengths (B,)) -> (B, n_bins, n_frames, 3)`; default
    `adarl_jax.data.frontend.make_frontend(config)`, built only when features must be computed.
    Files that cannot be read are logged, listed in `skipped` and left out of `utterances`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    paths = _check_paths(utterances)
    _labels(config, utterances)  # fail before any work on labels that cannot be encoded
    features, meta, folder, from_cache = _open_cache(config, paths, cache_dir, frontend, progress,
                                                     batch_size, speed)
    kept, seg_utt, seg_start, seg_frames = _segment_index(meta, paths)
    kept_utts = [utterances[i] for i in kept]
    emotion, domain = _labels(config, kept_utts)
    dataset = SegmentDataset(
        features=features, segment_utt=seg_utt, segment_start_s=seg_start, utterances=kept_utts,
        emotion=emotion, gender=domain, skipped=[(p, r) for p, r in meta["skipped"]],
        classes=tuple(config.data.classes), cache_dir=folder, from_cache=from_cache,
        segment_frames=seg_frames,
    )
    if standardise:
        dataset = standardised(config, dataset)
    s = dataset.summary()
    message = (
        f"dataset{'' if speed == 1 else f' at {speed:g}x speed'}: {s['n_utterances']} "
        f"utterances, {s['n_segments']} segments, "
        f"{s['n_skipped']} skipped, cache {folder} ({s['cache_bytes'] / 2**20:.1f} MiB"
        f"{', reused' if from_cache else ''}); segments per class {s['segments_per_class']}"
    )
    logger.info(message)
    if progress:
        print(message, file=sys.stderr)
    return dataset


def compute_features(
    paths, config, frontend: Frontend | None = None, batch_size: int = 32, with_index: bool = False,
    with_frames: bool = False,
):
    """Spectrogram segments of the given files, in order: (n_segments, F, T, 3) float32.

    Files are read block by block (`audio.iter_segments`), so long recordings fit in memory.
    Unusable files raise AudioError. With `with_index`, also returns each segment's file index
    (int32) and start time in seconds (float32); with `with_frames`, then each segment's count
    of valid frames (int32).
    """
    d = config.data
    feature_shape = (int(config.frontend.n_bins), int(config.frontend.n_frames), 3)
    seg_len = int(round(d.segment_s * d.sample_rate))
    frontend = frontend if frontend is not None else default_frontend(config)
    batcher = Batcher(frontend, batch_size, seg_len, feature_shape)
    blocks, file_index, starts, frames = [], [], [], []
    for i, path in enumerate(paths):
        for wave, length, start in iter_segments(
            path, d.sample_rate, d.segment_s, d.min_tail_s, **cut_options(config),
        ):
            file_index.append(i)
            starts.append(start)
            frames.append(valid_frame_count(config, length))
            block = batcher.add(wave, length)
            if block is not None:
                blocks.append(block)
    block = batcher.flush()
    if block is not None:
        blocks.append(block)
    features = np.concatenate(blocks) if blocks else np.zeros((0, *feature_shape), np.float32)
    out = (features,)
    if with_index:
        out += (np.array(file_index, np.int32), np.array(starts, np.float32))
    if with_frames:
        out += (np.array(frames, np.int32),)
    return out if len(out) > 1 else features


def group_statistics(sources, groups, config, frontend: Frontend | None = None,
                     batch_size: int = 32, eps: float = 1e-5) -> dict:
    """{group: (mean (F, 1, C), std + eps (F, 1, C), seconds)}: `speaker_statistics` of each
    group of inputs, with the seconds of audio (at the model's rate) they came from.

    sources: one callable per input returning its segments ((L,) wave, real length, start),
    as `audio.iter_segments` yields them; groups: one hashable per source. The front end runs
    in fixed-size batches over all inputs together (a segment's features do not depend on
    its batch), each input's sums are kept apart, and an input whose reading raises is left
    out whole (its row reports the error). A group with no readable input is absent.
    """
    d = config.data
    feature_shape = (int(config.frontend.n_bins), int(config.frontend.n_frames), 3)
    seg_len = int(round(d.segment_s * d.sample_rate))
    batcher = Batcher(frontend if frontend is not None else default_frontend(config), batch_size,
                      seg_len, feature_shape)
    # per input: sum and sum of squares over valid frames (F, C), frames, samples (each sample
    # once, however many overlapping segments hold it)
    sums = [[np.zeros((feature_shape[0], feature_shape[2])),
             np.zeros((feature_shape[0], feature_shape[2])), 0, 0] for _ in sources]
    pending: list[tuple[int, int]] = []  # (input, valid frames) of each segment in the batcher
    failed: set[int] = set()

    def take(block):
        for x, (i, n) in zip(block, pending[:len(block)]):
            x = np.asarray(x[:, :n], np.float64)
            acc = sums[i]
            acc[0] += x.sum(1)
            acc[1] += np.square(x).sum(1)
            acc[2] += n
        del pending[:len(block)]

    for i, open_segments in enumerate(sources):
        covered = 0  # the input's samples up to here are counted
        try:
            for wave, length, start_s in open_segments():
                pending.append((i, valid_frame_count(config, length)))
                first = int(round(start_s * d.sample_rate))
                sums[i][3] += max(0, first + int(length) - max(covered, first))
                covered = max(covered, first + int(length))
                block = batcher.add(wave, length)
                if block is not None:
                    take(block)
        except Exception:  # AudioError or any odd file: its row reports the error
            failed.add(i)
    block = batcher.flush()
    if block is not None:
        take(block)
    out = {}
    for g in dict.fromkeys(groups):
        members = [i for i, gi in enumerate(groups) if gi == g and i not in failed and sums[i][2]]
        if members:
            total = sum(sums[i][0] for i in members)
            sq = sum(sums[i][1] for i in members)
            count = sum(sums[i][2] for i in members)
            seconds = sum(sums[i][3] for i in members) / d.sample_rate
            out[g] = (*_moments(total, sq, count, eps), seconds)
    return out


def speaker_statistics_of_files(paths, config, frontend: Frontend | None = None):
    """(mean, std) of `paths` taken as one speaker's audio, as `speaker_normalize` computes
    them: per (frequency, channel) over every valid frame of every segment. Unreadable files
    are left out; none readable raises ValueError."""
    d = config.data
    sources = [lambda p=p: iter_segments(p, d.sample_rate, d.segment_s, d.min_tail_s,
                                         **cut_options(config)) for p in paths]
    stats = group_statistics(sources, [0] * len(sources), config, frontend)
    if not stats:
        raise ValueError("no readable audio to compute speaker statistics from")
    return stats[0][:2]
