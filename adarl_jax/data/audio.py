"""Reading audio and cutting it into the paper's 3 s segments (Sec. 2.4).

One reader for every format libsndfile reads (wav 16/24/32-bit and float, flac, ogg): mixed to
mono by the mean over channels and resampled with `scipy.signal.resample_poly`. Utterances are
cut into segments, one every `hop_s` (by default the segment's length: no overlap); a partial
last segment is kept if it holds audio no whole segment covers and is at least `min_tail_s`
long (or is the only segment), and short segments are zero-padded at the end (their real
length travels with them, so the front end can normalise over the real samples only). An
in-memory recording (`prepare_wave`) is mixed and resampled the same way. With `trim_db` > 0 the leading and
trailing silence is cut first (`speech_bounds`: from the first to the last 25 ms frame within
`trim_db` dB of the file's loudest frame); segment starts stay in the file's time. With
`level_dbfs` < 0 the (trimmed) recording is then scaled to that RMS level (`level_gain`).

Files that are usable but suspect get warnings rather than errors: a `warnings` list passed to
`load_audio` or `iter_segments` receives one line per problem. Two are checked: silence (every
sample zero, or an RMS level below `SILENCE_DBFS` = -60 dBFS over the whole file, i.e. an RMS
under 0.001 of full scale: nothing a speech model can read) and truncation (the file holds
fewer frames than its header declares, as libsndfile reports it, e.g. a wav cut off mid-copy).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

__all__ = ["AudioError", "SILENCE_DBFS", "TRIM_FRAME_S", "level_warning", "load_audio",
           "prepare_wave", "frame_power", "speech_bounds", "trim_silence", "segment",
           "iter_segments", "segment_count", "level_gain"]

SILENCE_DBFS = -60.0  # RMS level (dB re full scale 1.0) below which a file is near-silent
TRIM_FRAME_S = 0.025  # the frames whose levels decide where silence is trimmed


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _rates(rate_in: int, rate_out: int) -> tuple[int, int]:
    g = math.gcd(int(rate_in), int(rate_out))
    return int(rate_out) // g, int(rate_in) // g


def _resampled_length(n: int, up: int, down: int) -> int:
    return -(-n * up // down)  # what resample_poly returns: ceil(n * up / down)


def _open(path) -> sf.SoundFile:
    if not os.path.exists(path):
        raise AudioError(path, "no such file")
    if os.path.isdir(path):
        raise AudioError(path, "is a folder, not an audio file")
    try:
        return sf.SoundFile(path)
    except Exception as e:  # libsndfile reports every unreadable header as a RuntimeError subclass
        raise AudioError(path, f"unreadable or corrupt audio ({_short(e)})") from e


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


def _check_finite(path, x: np.ndarray) -> None:
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise AudioError(path, f"contains {bad} NaN or infinite sample value(s)")


def level_warning(peak: float, sum_squares: float, n: int) -> str | None:
    """'silent ...' / 'near-silent ...' for a wave of n samples with this peak |x| and sum of
    x**2, or None when its RMS level is at least SILENCE_DBFS."""
    if n <= 0:
        return None
    if peak == 0.0:
        return "silent: every sample is zero"
    rms = math.sqrt(sum_squares / n)
    dbfs = 20 * math.log10(rms) if rms > 0 else -math.inf
    if dbfs < SILENCE_DBFS:
        return (f"near-silent: RMS level {dbfs:.1f} dBFS (peak {peak:.2g}), below "
                f"{SILENCE_DBFS:.0f} dBFS")
    return None


_SHOULD_BE = re.compile(r"^[ \t]*([^:\n]*?)[ \t]*:[ \t]*(\d+)[ \t]*\(should be (\d+)\)", re.M)


def _truncation(f: sf.SoundFile, frames_read: int | None = None) -> str | None:
    """Why the file is shorter than its header declares, or None.

    libsndfile trims a truncated file's frame count to what is there and notes the header's
    figure in its log ('data : 64000 (should be 31978)'); a reader that gets fewer frames than
    `f.frames` (`frames_read`) also means the file ended early.
    """
    claims = [(name, int(a), int(b)) for name, a, b in _SHOULD_BE.findall(f.extra_info)]
    data = [c for c in claims if c[0].lower() in ("data", "ssnd", "data size")] or claims
    # 0xFFFFFFFF and the like: a streamed file's 'length unknown', not a claim
    short = [c for c in data if 0xFFFFFF00 > c[1] > c[2] > 0]
    if short:
        name, claimed, present = short[0]
        seconds = f.frames / f.samplerate if f.samplerate else 0.0
        return (f"truncated: the header declares {claimed} bytes of audio data, the file holds "
                f"{present} (about {seconds * claimed / present:.2f} s claimed, "
                f"{seconds:.2f} s read)")
    if frames_read is not None and 0 < f.frames and frames_read < f.frames:
        return (f"truncated: the header declares {f.frames} frames, the file holds "
                f"{frames_read}")
    return None


def _mono(data: np.ndarray) -> np.ndarray:
    """(samples, channels) -> (samples,): the mean over channels."""
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def _resample(wave: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """A mono wave at `rate_out` (resample_poly), float32 and contiguous."""
    if int(rate_in) != int(rate_out):
        wave = resample_poly(wave, *_rates(rate_in, rate_out))
    return np.ascontiguousarray(wave, dtype=np.float32)


def prepare_wave(waveform, sample_rate: int, target_rate: int = 16000,
                 min_samples: int = 320, channels_first: bool = False) -> np.ndarray:
    """An in-memory recording as `load_audio` makes a file: float32 mono at `target_rate`.

    waveform (samples,) or (samples, channels) at `sample_rate` ((channels, samples) with
    channels_first). Raises ValueError for a wrong shape (a 2-D array with more channels than
    samples names channels_first), an empty or non-finite waveform, or one shorter than
    `min_samples` after resampling.
    """
    x = np.asarray(waveform, np.float32)
    if x.ndim == 2 and channels_first:
        x = x.T
    if x.ndim == 2 and x.shape[1] > x.shape[0]:
        raise ValueError(f"waveform of shape {x.shape}: as (samples, channels) it has more "
                         f"channels than samples; for (channels, samples) pass "
                         f"channels_first=True")
    if x.ndim == 2:
        x = _mono(x)
    if x.ndim != 1:
        raise ValueError(f"waveform must be (samples,) or (samples, channels), got {x.shape}")
    if x.size == 0:
        raise ValueError("empty waveform")
    if not np.all(np.isfinite(x)):
        raise ValueError("waveform contains NaN or infinite values")
    x = _resample(x, sample_rate, target_rate)
    if x.size < min_samples:
        raise ValueError(f"too short: {x.size} samples at {target_rate} Hz, "
                         f"need at least {min_samples}")
    return x


def load_audio(path, sample_rate: int = 16000, min_samples: int = 320,
               warnings: list | None = None, speed: float = 1.0) -> np.ndarray:
    """The whole file as float32 mono at `sample_rate`.

    `speed` != 1 plays the recording that much faster (speed perturbation: read as if recorded
    at speed x its rate, so duration / speed, pitch and formants x speed), in the same one
    resampling. Raises AudioError for unreadable, corrupt, empty, NaN/inf-containing files and
    for files shorter than `min_samples` after resampling. `warnings` (a list) receives a line
    for a silent or truncated file (see the module docstring).
    """
    if not speed > 0:
        raise ValueError(f"speed={speed}: expected a positive factor")
    with _open(path) as f:
        rate_in = f.samplerate
        try:
            data = f.read(dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(path, f"corrupt audio data ({_short(e)})") from e
        truncated = _truncation(f, data.shape[0])
    if data.shape[0] == 0:
        raise AudioError(path, "empty (zero-length) audio")
    _check_finite(path, data)
    wave = _resample(_mono(data), max(1, round(rate_in * speed)), sample_rate)
    if wave.shape[0] < min_samples:
        raise AudioError(
            path,
            f"too short: {wave.shape[0]} samples at {sample_rate} Hz, need at least {min_samples}",
        )
    if warnings is not None:
        level = level_warning(float(np.max(np.abs(wave))), float(np.dot(wave, wave)), wave.size)
        warnings.extend(w for w in (truncated, level) if w)
    return wave


class _FramePower:
    """Mean square of consecutive `frame_len`-sample frames of a wave fed block by block (the
    last frame may be partial): the same frames whatever the blocks."""

    def __init__(self, frame_len: int):
        self.frame_len, self.means, self.n = frame_len, [], 0
        self.carry = np.zeros((0,), np.float64)  # the samples of the unfinished frame

    def add(self, block: np.ndarray) -> None:
        self.n += len(block)
        x = np.concatenate([self.carry, np.asarray(block, np.float64)])
        k = x.shape[0] // self.frame_len
        self.means.append(np.square(x[:k * self.frame_len]).reshape(k, self.frame_len).mean(1))
        self.carry = x[k * self.frame_len:]

    def power(self) -> np.ndarray:
        partial = [np.square(self.carry).mean(keepdims=True)] if self.carry.size else []
        return np.concatenate([*self.means, *partial, np.zeros((0,), np.float64)])


def frame_power(wave: np.ndarray, frame_len: int) -> np.ndarray:
    """(frames,) mean square of each `frame_len`-sample frame of `wave`, the last one partial."""
    acc = _FramePower(frame_len)
    acc.add(wave)
    return acc.power()


def speech_bounds(power: np.ndarray, frame_len: int, n: int, trim_db: float,
                  min_samples: int = 1) -> tuple[int, int]:
    """[start, end) in samples of a wave of n samples without its leading and trailing
    silence: from the first to the last frame whose power is within `trim_db` dB of the
    loudest frame's. The whole wave when `trim_db` <= 0 or the wave is all zeros; at least
    `min_samples` long (widened at the end, then at the start)."""
    if trim_db <= 0 or not power.size or not power.max() > 0:
        return 0, n
    keep = np.flatnonzero(power >= power.max() * 10.0 ** (-trim_db / 10.0))
    start, end = int(keep[0]) * frame_len, min((int(keep[-1]) + 1) * frame_len, n)
    if end - start < min_samples:
        end = min(start + min_samples, n)
        start = max(0, end - min_samples)
    return start, end


def _trim_frame(sample_rate: int) -> int:
    return int(round(TRIM_FRAME_S * sample_rate))


def trim_silence(wave: np.ndarray, sample_rate: int, trim_db: float,
                 min_samples: int = 1) -> tuple[np.ndarray, int]:
    """(the wave between its `speech_bounds`, the index of its first kept sample); the wave
    itself when `trim_db` <= 0."""
    if trim_db <= 0:
        return wave, 0
    frame_len = _trim_frame(sample_rate)
    first, end = speech_bounds(frame_power(wave, frame_len), frame_len, wave.shape[0], trim_db,
                               min_samples)
    return wave[first:end], first


def level_gain(mean_square: float, level_dbfs: float) -> float:
    """The factor that brings a wave of this mean square to an RMS level of `level_dbfs` dB
    re full scale; 1 when `level_dbfs` is 0 (as recorded) or the wave is below SILENCE_DBFS
    (near-silent: its noise would be raised into speech levels; it is warned about)."""
    if not level_dbfs or not mean_square > 10.0 ** (SILENCE_DBFS / 10.0):
        return 1.0
    return 10.0 ** (float(level_dbfs) / 20.0) / math.sqrt(mean_square)


def _kept_mean_square(power: np.ndarray, frame_len: int, n: int, first: int, end: int):
    """The mean square of samples [first, end) of a wave of n samples from its frames'
    `power`, when both bounds fall on frame edges (None otherwise)."""
    if first % frame_len or (end % frame_len and end != n) or end <= first:
        return None
    sizes = np.full(power.shape, frame_len, np.float64)
    if sizes.size:
        sizes[-1] = n - (sizes.size - 1) * frame_len
    a, b = first // frame_len, -(-end // frame_len)
    return float(np.dot(power[a:b], sizes[a:b]) / (end - first))


def _lengths(segment_s: float, hop_s: float, sample_rate: int) -> tuple[int, int]:
    """(segment length, hop) in samples; hop_s 0 means the segment length (no overlap)."""
    seg_len = int(round(segment_s * sample_rate))
    if seg_len < 1:
        raise ValueError(f"segment_s={segment_s} gives no sample at {sample_rate} Hz")
    hop = int(round(hop_s * sample_rate)) if hop_s else seg_len
    if not 1 <= hop <= seg_len:
        raise ValueError(f"hop_s={hop_s} must give between 1 sample and the segment's "
                         f"{seg_len} at {sample_rate} Hz")
    return seg_len, hop


def segment_count(n_samples: int, sample_rate: int, segment_s: float = 3.0, min_tail_s: float = 1.0,
                  hop_s: float = 0.0) -> int:
    """How many segments `segment` makes of `n_samples` samples."""
    return len(_starts(int(n_samples), *_lengths(segment_s, hop_s, sample_rate),
                       int(round(min_tail_s * sample_rate))))


def _starts(n: int, seg_len: int, hop: int, min_tail: int) -> list[int]:
    """Segment starts in samples: one every `hop` while a whole segment fits, then one partial
    segment if it holds samples no whole one covers and is at least `min_tail` long (or is
    the only segment)."""
    n_full = (n - seg_len) // hop + 1 if n >= seg_len else 0
    starts = [k * hop for k in range(n_full)]
    covered = starts[-1] + seg_len if starts else 0
    partial = n_full * hop
    if n > covered and (n - partial >= min_tail or not starts):
        starts.append(partial)
    return starts


def segment(
    wave: np.ndarray, sample_rate: int, segment_s: float = 3.0, min_tail_s: float = 1.0,
    hop_s: float = 0.0, trim_db: float = 0.0, min_samples: int = 1, level_dbfs: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments of a mono wave, one every `hop_s` seconds (0: `segment_s`, no overlap), of its
    part between `speech_bounds` when `trim_db` > 0 (starts in the wave's time), that part
    scaled to an RMS level of `level_dbfs` when it is < 0.

    Returns (segments float32 (n, L), lengths int32 (n,), starts_s float32 (n,)) with
    L = round(segment_s * sample_rate); a segment shorter than L is zero-padded at the end and
    `lengths` holds its real number of samples.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"segment expects a mono 1-D wave, got shape {wave.shape}")
    if wave.shape[0] == 0:
        raise ValueError("segment got an empty wave")
    seg_len, hop = _lengths(segment_s, hop_s, sample_rate)
    wave, first = trim_silence(wave, sample_rate, trim_db, min_samples)
    gain = level_gain(float(np.mean(np.square(wave, dtype=np.float64))), level_dbfs)
    if gain != 1.0:
        wave = (wave * np.float32(gain)).astype(np.float32)
    starts = _starts(wave.shape[0], seg_len, hop, int(round(min_tail_s * sample_rate)))
    segments = np.zeros((len(starts), seg_len), np.float32)
    lengths = np.zeros((len(starts),), np.int32)
    for i, start in enumerate(starts):
        piece = wave[start : start + seg_len]
        segments[i, : piece.shape[0]] = piece
        lengths[i] = piece.shape[0]
    starts_s = ((np.asarray(starts, dtype=np.float64) + first) / sample_rate).astype(np.float32)
    return segments, lengths, starts_s


def _resampled_blocks(path, f: sf.SoundFile, up: int, down: int, block_frames: int) -> Iterator[np.ndarray]:
    """The file's mono wave at the target rate, block by block, equal to resampling it whole.

    Each block is resampled with a margin of context on both sides (a multiple of `down` input
    samples, longer than the filter's half-length) and the margins are cropped off, so block
    edges carry no zero-padding artefacts. Offsets that are multiples of `down` input samples
    map to whole output samples, which keeps the blocks phase-aligned with a whole-file resample.
    """
    resample = up != 1 or down != 1
    if resample:
        half_len_in = 10 * max(up, down) / up  # resample_poly's default filter, in input samples
        margin = down * math.ceil((half_len_in + 2) / down)
        block_frames = max(down, down * (block_frames // down))
    else:
        margin = 0
    total = f.frames
    pos = 0  # first input sample of the next block
    while True:
        left = min(margin, pos)
        f.seek(pos - left)
        try:
            data = f.read(left + block_frames + margin, dtype="float32", always_2d=True)
        except Exception as e:
            raise AudioError(path, f"corrupt audio data ({_short(e)})") from e
        n_read = data.shape[0] - left
        if n_read <= 0:
            return
        _check_finite(path, data)
        mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        n_core = min(block_frames, n_read)
        if resample:
            out = resample_poly(mono, up, down)
            start = left * up // down
            yield np.asarray(out[start : start + _resampled_length(n_core, up, down)], np.float32)
        else:
            yield np.asarray(mono[:n_core], np.float32)
        pos += n_core
        if n_core < block_frames or (total > 0 and pos >= total):
            return


def _range_mean_square(path, f, up: int, down: int, block_frames: int, first: int,
                       end: int) -> float:
    """The mean square of samples [first, end) of the resampled file, read once more."""
    total, at = 0.0, 0
    for block in _resampled_blocks(path, f, up, down, block_frames):
        piece = np.asarray(block[max(first - at, 0):max(end - at, 0)], np.float64)
        total += float(np.dot(piece, piece))
        at += block.shape[0]
    return total / max(end - first, 1)


def iter_segments(
    path,
    sample_rate: int = 16000,
    segment_s: float = 3.0,
    min_tail_s: float = 1.0,
    min_samples: int = 320,
    block_s: float = 30.0,
    warnings: list | None = None,
    hop_s: float = 0.0,
    trim_db: float = 0.0,
    level_dbfs: float = 0.0,
) -> Iterator[tuple[np.ndarray, int, float]]:
    """Segments of a file of any length, reading it in blocks of about `block_s` seconds.

    Yields (segment float32 (L,), real length, start in seconds), the same values as
    `segment(load_audio(path, ...), ...)` up to float rounding, with memory bounded by the
    block size instead of the file's length. Raises AudioError as `load_audio` does; a file
    with NaN samples late in it raises when that block is reached. `warnings` receives the
    same lines as `load_audio`'s once the whole file has been read. With `trim_db` > 0 or
    `level_dbfs` < 0 the file is read twice: once for the frame levels that place the cut and
    give the level, once for the segments (three times in the rare case of a cut between
    frame edges, a recording barely `min_samples` long, whose level needs its samples).
    """
    seg_len, hop = _lengths(segment_s, hop_s, sample_rate)
    min_tail = int(round(min_tail_s * sample_rate))
    with _open(path) as f:
        up, down = _rates(f.samplerate, sample_rate)
        if f.frames == 0:
            raise AudioError(path, "empty (zero-length) audio")
        n_out = _resampled_length(f.frames, up, down)
        if 0 < n_out < min_samples:
            raise AudioError(
                path, f"too short: {n_out} samples at {sample_rate} Hz, need at least {min_samples}"
            )
        block_frames = max(1, int(round(block_s * f.samplerate)))
        first, end, gain = 0, None, 1.0  # the kept samples [first, end) of the wave, their gain
        if trim_db > 0 or level_dbfs:
            acc = _FramePower(_trim_frame(sample_rate))
            for block in _resampled_blocks(path, f, up, down, block_frames):
                acc.add(block)
            first, end = speech_bounds(acc.power(), acc.frame_len, acc.n, trim_db, min_samples)
            if level_dbfs:
                ms = _kept_mean_square(acc.power(), acc.frame_len, acc.n, first, end)
                if ms is None:
                    ms = _range_mean_square(path, f, up, down, block_frames, first, end)
                gain = level_gain(ms, level_dbfs)
        buf = np.zeros((0,), np.float32)
        index = 0
        produced, peak, sum_squares = 0, 0.0, 0.0
        for block in _resampled_blocks(path, f, up, down, block_frames):
            at = produced  # the block's first sample in the wave
            produced += block.shape[0]
            if block.size:
                peak = max(peak, float(np.max(np.abs(block))))
                sum_squares += float(np.dot(block, block))
            if end is not None:
                block = block[max(first - at, 0):max(end - at, 0)]
            if gain != 1.0:
                block = (block * np.float32(gain)).astype(np.float32)
            buf = np.concatenate([buf, block]) if buf.size else block
            while buf.shape[0] >= seg_len:  # buf starts at sample first + index * hop
                yield np.array(buf[:seg_len]), seg_len, (first + index * hop) / sample_rate
                buf = buf[hop:]
                index += 1
        if produced == 0:
            raise AudioError(path, "empty (zero-length) audio")
        if produced < min_samples:
            raise AudioError(
                path, f"too short: {produced} samples at {sample_rate} Hz, need at least {min_samples}"
            )
        if warnings is not None:
            truncated = _truncation(f) or (
                f"truncated: the header declares {n_out} samples at {sample_rate} Hz, the file "
                f"holds {produced}" if produced < n_out else None)
            warnings.extend(w for w in (truncated, level_warning(peak, sum_squares, produced)) if w)
        tail = buf.shape[0]
        uncovered = index * hop + tail - ((index - 1) * hop + seg_len if index else 0)
        if uncovered > 0 and (tail >= min_tail or index == 0):
            padded = np.zeros((seg_len,), np.float32)
            padded[:tail] = buf
            yield padded, tail, (first + index * hop) / sample_rate
