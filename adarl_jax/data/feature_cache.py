"""The on-disk cache of spectrogram segments: its key, its layout, and building it.

The features go to one `.npy` file that later runs open as a read-only memory map; the rest
(which segments belong to which file, files that could not be read) is JSON. Nothing is
pickled. The key covers what the features depend on: the front-end config, the data fields
that shape the segments, and every file's (path, size, mtime). Labels are not part of it.

Building reads every file once to count the segments (the count sizes the memory map), then
runs the front end in fixed-size batches; decoded segments are kept between the two passes up
to a memory budget, beyond which a file is read again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable

import numpy as np
from numpy.lib.format import open_memmap
from tqdm.auto import tqdm

from adarl_jax.data.audio import AudioError, load_audio, segment
from adarl_jax.data.frontend import make_frontend
from adarl_jax.workdir.files import write_text_atomic

__all__ = ["CACHE_FORMAT", "Frontend", "Batcher", "cache_key", "file_stamp", "stamps_key",
           "min_samples_for", "valid_frame_count", "load_cached", "build", "default_frontend"]

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the layout or the meaning of cached features changes
FEATURES = "features.npy"
META = "meta.json"
_WAVE_BUDGET_BYTES = 512 << 20  # decoded segments kept between the two passes; beyond, re-read

Frontend = Callable[[np.ndarray, np.ndarray], np.ndarray]


def min_samples_for(config) -> int:
    """One frame of the longest analysis window the front end uses."""
    fe = config.frontend
    window = fe.colormap_window_s if fe.kind == "colormap" else max(fe.windows_s)
    return max(1, int(round(window * config.data.sample_rate)))


def cut_options(config) -> dict:
    """How the config cuts a recording, as keyword arguments of `audio.segment` and
    `audio.iter_segments` beyond (sample_rate, segment_s, min_tail_s): the hop between
    segments, the silence trim, the level and the shortest usable recording."""
    d = config.data
    return {"hop_s": float(d.segment_hop_s), "trim_db": float(d.trim_db),
            "level_dbfs": float(d.get("level_dbfs", 0.0)), "min_samples": min_samples_for(config)}


def valid_frame_count(config, length: int) -> int:
    """Frames t with t * hop < length (at least 1, at most n_frames), as the front end masks."""
    hop = int(round(config.frontend.hop_s * config.data.sample_rate))
    return int(min(max(-(-int(length) // hop), 1), int(config.frontend.n_frames)))


def key_material(config, speed: float = 1.0) -> dict:
    """What the features depend on besides the files; `speed` != 1: the recordings played
    that much faster (`audio.load_audio`), a copy of the corpus for training."""
    d = config.data
    return {
        "format": CACHE_FORMAT,
        "frontend": config.frontend.to_dict(),
        "data": {"sample_rate": d.sample_rate, "segment_s": d.segment_s, "min_tail_s": d.min_tail_s,
                 # only when set, so that caches made before the field keep their keys
                 **{k: d[k] for k in ("segment_hop_s", "trim_db", "level_dbfs") if d.get(k)},
                 **({"speed": float(speed)} if float(speed) != 1.0 else {})},
    }


def file_stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
        return (path, int(st.st_size), int(st.st_mtime_ns))
    except OSError:
        return (path, -1, -1)


def stamps_key(material: dict, paths: Iterable[str]) -> str:
    """sha256 over `material` (JSON data) and each file's (absolute path, size, mtime)."""
    stamps = sorted(file_stamp(os.path.abspath(p)) for p in paths)
    blob = json.dumps({**material, "files": stamps}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_key(config, paths: Iterable[str], speed: float = 1.0) -> str:
    """sha256 over the front-end config, the segmenting data fields, the speed and each file's
    stamp."""
    return stamps_key(key_material(config, speed), paths)


def default_frontend(config) -> Frontend:
    return make_frontend(config)


class Batcher:
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


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def load_cached(folder: str, key: str, feature_shape: tuple[int, ...]) -> tuple[np.ndarray, dict] | None:
    """(features memory map, metadata) of the cache in `folder`; None when absent or stale."""
    meta_path, feat_path = os.path.join(folder, META), os.path.join(folder, FEATURES)
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


def _read_segments(config, path, speed: float, warnings: list | None = None):
    """(segments, lengths, starts) of one file as the config reads and cuts it, at `speed`."""
    d = config.data
    wave = load_audio(path, d.sample_rate, min_samples=min_samples_for(config), warnings=warnings,
                      speed=speed)
    return segment(wave, d.sample_rate, d.segment_s, d.min_tail_s, **cut_options(config))


def _read_pass(config, paths, progress: bool, speed: float):
    """Pass 1: every file read and segmented -> (files, skipped, decoded segments kept)."""
    files, skipped, kept_waves, budget = [], [], {}, _WAVE_BUDGET_BYTES
    for path in tqdm(paths, desc="reading audio", unit="file", disable=not progress):
        warnings: list[str] = []  # silent or truncated: kept, but said
        try:
            segs, lengths, starts = _read_segments(config, path, speed, warnings)
        except AudioError as e:
            logger.warning("skipping %s: %s", path, e.reason)
            skipped.append((path, e.reason))
            continue
        for w in warnings:
            logger.warning("%s: %s", path, w)
        files.append({"path": path, "starts_s": [float(s) for s in starts],
                      "frames": [valid_frame_count(config, n) for n in lengths]})
        if segs.nbytes <= budget:
            kept_waves[path] = (segs, lengths)
            budget -= segs.nbytes
    return files, skipped, kept_waves


def _segments_of(config, f: dict, kept_waves: dict, speed: float):
    """The decoded segments of file entry `f`: kept from pass 1, or read again."""
    segs, lengths = kept_waves.pop(f["path"], (None, None))
    if segs is None:
        segs, lengths, _ = _read_segments(config, f["path"], speed)
        if len(segs) != len(f["starts_s"]):
            raise RuntimeError(f"{f['path']} changed while the dataset was being prepared")
    return segs, lengths


def _write_features(config, files, kept_waves, out, batcher, progress: bool,
                    speed: float) -> None:
    """Pass 2: the front end over every segment, in file order, into the memory map `out`;
    sets each file entry's `first` row."""
    row, first = 0, 0

    def put(block):
        nonlocal row
        if block is not None:
            out[row:row + len(block)] = block
            row += len(block)

    with tqdm(total=len(out), desc="spectrograms", unit="seg", disable=not progress) as bar:
        for f in files:
            f["first"] = first
            segs, lengths = _segments_of(config, f, kept_waves, speed)
            for wave, length in zip(segs, lengths):
                put(batcher.add(wave, int(length)))
            first += len(segs)
            bar.update(len(segs))
        put(batcher.flush())
    assert row == len(out), (row, len(out))


def build(config, paths, folder, key, feature_shape, frontend: Frontend | None, progress: bool,
          batch_size: int, speed: float = 1.0) -> None:
    """Writes the cache of `paths` (played at `speed`) into `folder`: features.npy (atomically
    renamed into place) then meta.json."""
    files, skipped, kept_waves = _read_pass(config, paths, progress, speed)
    n_segments = sum(len(f["starts_s"]) for f in files)
    if n_segments and frontend is None:
        frontend = default_frontend(config)
    seg_len = int(round(config.data.segment_s * config.data.sample_rate))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
    os.close(fd)
    try:
        out = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_segments, *feature_shape))
        _write_features(config, files, kept_waves, out,
                        Batcher(frontend, batch_size, seg_len, feature_shape), progress, speed)
        out.flush()
        out = None  # closes the map before the rename
        os.replace(tmp, os.path.join(folder, FEATURES))
    except BaseException:
        remove_quietly(tmp)
        raise
    meta = {
        "key": key,
        "key_material": key_material(config, speed),
        "n_segments": n_segments,
        "feature_shape": list(feature_shape),
        "files": files,
        "skipped": [list(s) for s in skipped],
    }
    write_text_atomic(os.path.join(folder, META), json.dumps(meta, indent=1, default=list))
