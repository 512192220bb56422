"""Spectrogram segments of a corpus, computed once by the front end and cached on disk.

Each utterance is read (`audio.load_audio`), cut into 3 s segments (`audio.segment`, Sec. 2.4)
and passed through the jit-compiled front end in fixed-size batches. The features go to one
`.npy` file that later runs open as a read-only memory map; the rest (which segment belongs to
which file, files that could not be read) is JSON. Nothing is pickled.

The cache key covers what the features depend on: the front-end config, the data fields that
shape the segments, and every file's (path, size, mtime). Labels are not part of it: they are
re-attached from the caller's utterances on every load, so relabelling a corpus or changing
`data.classes` reuses the cached spectrograms.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from adarl_jax.audio import AudioError, iter_segments, load_audio, segment
from adarl_jax.corpora import Utterance
from adarl_jax.files import write_text_atomic

__all__ = ["SegmentDataset", "prepare_dataset", "compute_features", "cache_key", "min_samples_for"]

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the layout or the meaning of cached features changes
_FEATURES = "features.npy"
_META = "meta.json"
_WAVE_BUDGET_BYTES = 512 << 20  # decoded segments kept between the two passes; beyond, re-read

Frontend = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class SegmentDataset:
    features: np.ndarray  # (n_seg, F, T, 3) float32, usually a read-only memory map
    segment_utt: np.ndarray  # (n_seg,) int32 index into `utterances`
    segment_start_s: np.ndarray  # (n_seg,) float32
    utterances: list[Utterance]  # those with at least one segment (skipped files are left out)
    emotion: np.ndarray  # (n_utt,) int32 index in config.data.classes, -1 = unlabelled
    gender: np.ndarray  # (n_utt,) int32 index in config.data.genders
    skipped: list[tuple[str, str]]  # (path, reason) of files that could not be used
    classes: tuple[str, ...] = ()
    cache_dir: str = ""  # the folder holding this dataset's features and metadata
    from_cache: bool = False
    segment_frames: np.ndarray | None = None  # (n_seg,) int32 valid frames (the rest are padding)

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


def min_samples_for(config) -> int:
    """One frame of the longest analysis window the front end uses."""
    fe = config.frontend
    window = fe.colormap_window_s if fe.kind == "colormap" else max(fe.windows_s)
    return max(1, int(round(window * config.data.sample_rate)))


def valid_frame_count(config, length: int) -> int:
    """Frames t with t * hop < length (at least 1, at most n_frames), as the front end masks."""
    hop = int(round(config.frontend.hop_s * config.data.sample_rate))
    return int(min(max(-(-int(length) // hop), 1), int(config.frontend.n_frames)))


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
        mean = total / count
        std = np.sqrt(np.maximum(sq / count - mean * mean, 0.0))
        out[g] = (mean[:, None, :], std[:, None, :] + eps)
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


def speaker_normalize(dataset: "SegmentDataset") -> "SegmentDataset":
    """frontend.normalize='speaker': each speaker's segments standardised per (frequency,
    channel) with that speaker's own statistics, in memory. Transductive: a test speaker's
    statistics come from its (unlabelled) audio; no label is read."""
    speakers = np.array([u.speaker for u in dataset.utterances], dtype=object)[dataset.segment_utt]
    stats = speaker_statistics(dataset.features, dataset.segment_frames, speakers)
    return dataclasses.replace(dataset, features=normalize_segments(
        dataset.features, dataset.segment_frames, speakers, stats))


def _key_material(config) -> dict:
    d = config.data
    return {
        "format": CACHE_FORMAT,
        "frontend": config.frontend.to_dict(),
        "data": {"sample_rate": d.sample_rate, "segment_s": d.segment_s, "min_tail_s": d.min_tail_s},
    }


def file_stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
        return (path, int(st.st_size), int(st.st_mtime_ns))
    except OSError:
        return (path, -1, -1)


def cache_key(config, paths: Iterable[str]) -> str:
    """sha256 over the front-end config, the segmenting data fields and each file's stamp."""
    stamps = sorted(file_stamp(os.path.abspath(p)) for p in paths)
    blob = json.dumps({**_key_material(config), "files": stamps}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


def _default_frontend(config) -> Frontend:
    from adarl_jax.frontend import make_frontend  # imported late: jax starts only when needed

    return make_frontend(config)


class _Batcher:
    """Runs the front end on fixed-size batches, so its jit never sees a new shape."""

    def __init__(self, frontend: Frontend, batch_size: int, seg_len: int, out_shape: tuple[int, ...]):
        self.frontend, self.batch_size, self.out_shape = frontend, batch_size, out_shape
        self.waves = np.zeros((batch_size, seg_len), np.float32)
        self.lengths = np.full((batch_size,), seg_len, np.int32)
        self.n = 0

    def add(self, wave: np.ndarray, length: int) -> np.ndarray | None:
        self.waves[self.n] = wave
        self.lengths[self.n] = length
        self.n += 1
        return self.flush() if self.n == self.batch_size else None

    def flush(self) -> np.ndarray | None:
        if self.n == 0:
            return None
        n, self.n = self.n, 0
        # Padding rows: silence with full length (no empty-mask division in the front end).
        self.waves[n:] = 0.0
        self.lengths[n:] = self.waves.shape[1]
        out = np.asarray(self.frontend(self.waves, self.lengths), dtype=np.float32)
        expect = (self.batch_size, *self.out_shape)
        if out.shape != expect:
            raise ValueError(f"front end returned shape {out.shape}, expected {expect}")
        return out[:n]


def _labels(config, utterances: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    classes, genders = tuple(config.data.classes), tuple(config.data.genders)
    unknown = sorted({u.emotion for u in utterances if u.emotion is not None and u.emotion not in classes})
    if unknown:
        raise ValueError(
            f"emotion(s) {', '.join(unknown)} are not in config.data.classes {classes}; "
            "filter the utterances with corpora.select_classes first"
        )
    bad = sorted({u.gender for u in utterances if u.gender not in genders})
    if bad:
        raise ValueError(f"gender(s) {', '.join(bad)} are not in config.data.genders {genders}")
    emotion = np.array([classes.index(u.emotion) if u.emotion is not None else -1 for u in utterances], np.int32)
    gender = np.array([genders.index(u.gender) for u in utterances], np.int32)
    return emotion, gender


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _load_cached(folder: str, key: str, feature_shape: tuple[int, ...]) -> tuple[np.ndarray, dict] | None:
    meta_path, feat_path = os.path.join(folder, _META), os.path.join(folder, _FEATURES)
    if not (os.path.isfile(meta_path) and os.path.isfile(feat_path)):
        return None
    try:
        with open(meta_path) as fh:
            meta = json.load(fh)
        features = np.load(feat_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        logger.warning("feature cache %s is unreadable (%s); recomputing", folder, e)
        return None
    if meta.get("key") != key or tuple(features.shape) != (meta.get("n_segments"), *feature_shape):
        logger.warning("feature cache %s does not match its metadata; recomputing", folder)
        return None
    return features, meta


def prepare_dataset(
    config,
    utterances: list[Utterance],
    cache_dir,
    frontend: Frontend | None = None,
    progress: bool = True,
    batch_size: int = 32,
) -> SegmentDataset:
    """Segments and spectrograms of `utterances`, from cache_dir/<key[:16]>/ when there.

    `frontend(waves (B, L), lengths (B,)) -> (B, n_bins, n_frames, 3)`; default
    `adarl_jax.frontend.make_frontend(config)`, built only when features must be computed.
    Files that cannot be read are logged, listed in `skipped` and left out of `utterances`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    paths = [os.path.abspath(u.path) for u in utterances]
    dup = [p for p, n in Counter(paths).items() if n > 1]
    if dup:
        raise ValueError(f"utterance path(s) listed twice: {', '.join(dup[:5])}")
    _labels(config, utterances)  # fail before any work on labels that cannot be encoded
    key = cache_key(config, paths)
    folder = os.path.join(os.fspath(cache_dir), key[:16])
    feature_shape = (int(config.frontend.n_bins), int(config.frontend.n_frames), 3)

    cached = _load_cached(folder, key, feature_shape)
    from_cache = cached is not None
    if cached is None:
        os.makedirs(folder, exist_ok=True)
        _build(config, sorted(paths), folder, key, feature_shape, frontend, progress, batch_size)
        cached = _load_cached(folder, key, feature_shape)
        if cached is None:
            raise RuntimeError(f"feature cache {folder} could not be read back after writing it")
    features, meta = cached

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
    kept_utts = [utterances[i] for i in kept]
    emotion, gender = _labels(config, kept_utts)
    dataset = SegmentDataset(
        features=features,
        segment_utt=seg_utt,
        segment_start_s=seg_start,
        utterances=kept_utts,
        emotion=emotion,
        gender=gender,
        skipped=[(p, r) for p, r in meta["skipped"]],
        classes=tuple(config.data.classes),
        cache_dir=folder,
        from_cache=from_cache,
        segment_frames=seg_frames,
    )
    if config.frontend.normalize == "speaker":
        dataset = speaker_normalize(dataset)
    s = dataset.summary()
    message = (
        f"dataset: {s['n_utterances']} utterances, {s['n_segments']} segments, "
        f"{s['n_skipped']} skipped, cache {folder} ({s['cache_bytes'] / 2**20:.1f} MiB"
        f"{', reused' if from_cache else ''}); segments per class {s['segments_per_class']}"
    )
    logger.info(message)
    if progress:
        print(message, file=sys.stderr)
    return dataset


def _build(config, paths, folder, key, feature_shape, frontend, progress, batch_size) -> None:
    """Pass 1 reads every file (the exact segment count sizes the memory map); pass 2 runs the
    front end. Decoded segments are kept between the passes up to a memory budget."""
    d = config.data
    min_samples = min_samples_for(config)
    seg_len = int(round(d.segment_s * d.sample_rate))

    files, skipped, kept_waves, budget = [], [], {}, _WAVE_BUDGET_BYTES
    for path in tqdm(paths, desc="reading audio", unit="file", disable=not progress):
        warnings: list[str] = []  # silent or truncated: kept, but said
        try:
            wave = load_audio(path, d.sample_rate, min_samples=min_samples, warnings=warnings)
        except AudioError as e:
            logger.warning("skipping %s: %s", path, e.reason)
            skipped.append((path, e.reason))
            continue
        for w in warnings:
            logger.warning("%s: %s", path, w)
        segs, lengths, starts = segment(wave, d.sample_rate, d.segment_s, d.min_tail_s)
        files.append({"path": path, "starts_s": [float(s) for s in starts],
                      "frames": [valid_frame_count(config, n) for n in lengths]})
        if segs.nbytes <= budget:
            kept_waves[path] = (segs, lengths)
            budget -= segs.nbytes
    n_segments = sum(len(f["starts_s"]) for f in files)

    if n_segments and frontend is None:
        frontend = _default_frontend(config)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
    os.close(fd)
    try:
        out = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_segments, *feature_shape))
        batcher = _Batcher(frontend, batch_size, seg_len, feature_shape)
        row = 0

        def put(block):
            nonlocal row
            if block is not None:
                out[row : row + len(block)] = block
                row += len(block)

        first = 0
        with tqdm(total=n_segments, desc="spectrograms", unit="seg", disable=not progress) as bar:
            for f in files:
                f["first"] = first
                segs, lengths = kept_waves.pop(f["path"], (None, None))
                if segs is None:
                    wave = load_audio(f["path"], d.sample_rate, min_samples=min_samples)
                    segs, lengths, _ = segment(wave, d.sample_rate, d.segment_s, d.min_tail_s)
                    if len(segs) != len(f["starts_s"]):
                        raise RuntimeError(f"{f['path']} changed while the dataset was being prepared")
                for wave, length in zip(segs, lengths):
                    put(batcher.add(wave, int(length)))
                first += len(segs)
                bar.update(len(segs))
            put(batcher.flush())
        assert row == n_segments, (row, n_segments)
        out.flush()
        out = None  # closes the map before the rename
        os.replace(tmp, os.path.join(folder, _FEATURES))
    except BaseException:
        _remove(tmp)
        raise
    meta = {
        "key": key,
        "key_material": _key_material(config),
        "n_segments": n_segments,
        "feature_shape": list(feature_shape),
        "files": files,
        "skipped": [list(s) for s in skipped],
    }
    write_text_atomic(os.path.join(folder, _META), json.dumps(meta, indent=1, default=list))


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
    frontend = frontend if frontend is not None else _default_frontend(config)
    batcher = _Batcher(frontend, batch_size, seg_len, feature_shape)
    blocks, file_index, starts, frames = [], [], [], []
    for i, path in enumerate(paths):
        for wave, length, start in iter_segments(
            path, d.sample_rate, d.segment_s, d.min_tail_s, min_samples=min_samples_for(config)
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


def speaker_statistics_of_files(paths, config, frontend: Frontend | None = None):
    """(mean, std) of `paths` taken as one speaker's audio, as `speaker_normalize` computes
    them: per (frequency, channel) over every valid frame of every segment."""
    frontend = frontend if frontend is not None else _default_frontend(config)
    parts = []
    for path in paths:
        try:
            parts.append(compute_features([path], config, frontend, with_frames=True))
        except AudioError as e:  # predict reports it in the file's row
            logger.warning("speaker statistics: skipping %s: %s", path, e.reason)
    if not parts:
        raise ValueError("no readable audio to compute speaker statistics from")
    features = np.concatenate([f for f, _ in parts])
    frames = np.concatenate([n for _, n in parts])
    return speaker_statistics(features, frames, np.zeros(len(features), np.int64))[0]
