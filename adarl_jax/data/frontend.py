"""The spectrogram front end (the paper's Sec. 2.4): pure functions in jnp.

A batch of 3 s segments `waves (B, L)` with true lengths `lengths (B,)` becomes the model's
input `(B, n_bins, n_frames, 3)` (NHWC: batch, frequency, time, channels; `FrontendSpec.
output_shape` derives the channel count from the config). All constants come
from `config.frontend` and `config.data.sample_rate` through `FrontendSpec`.

Definition (the tests' float64 numpy/scipy reference implements exactly this):

* hop = round(hop_s * sr) samples and, for a window of length win_s, w = round(win_s * sr).
  Frame t (t = 0 .. n_frames-1) is centred at sample t*hop: it covers samples
  [t*hop - w//2, t*hop - w//2 + w). Samples outside [0, length) count as zero, whatever the
  padding of `waves` holds.
* The window is the periodic Hamming window (scipy.signal.get_window('hamming', w)).
  X_t(k) = sum_n frame_t[n] window[n] exp(-2 pi i k n / n_fft), bins k = 0 .. n_bins-1: the
  n_fft-point real DFT of the windowed frame (zero-padded to n_fft). If w > n_fft the same sum
  runs over the whole window (the DTFT sampled every sr/n_fft Hz, i.e. the time-aliased
  frame). The paper's configs and `configs/quick.py` keep every window within n_fft; the
  earlier quarter-resolution recipe (`configs/quick_sgd.py`, `quick_paper.py`: n_fft 320 with
  30 and 40 ms windows) and shrunken test configs do not. Log magnitude:
  log(max(|X|, log_floor)).
* Valid frames are those with t*hop < length, so n_valid = clip(ceil(length / hop), 1, n_frames).
* z-score per segment and channel over all kept bins x valid frames:
  (x - mean) / (std + zscore_eps), std with ddof=0. Frames that are not valid are exactly 0
  ("short segments are zero-padded in time after normalisation").
* kind 'multi_window' (default): channel c is the log spectrogram with window windows_s[c]
  (20, 30, 40 ms), each z-scored on its own. With third_channel 'mean', windows_s names two
  windows (the paper's 20 and 40 ms, Sec. 2.4) and the third channel is the mean of their two
  log spectrograms (the log of the geometric mean magnitude), normalised like the others.
* kind 'colormap': one log spectrogram with colormap_window_s (20 ms), min-max scaled to [0, 1]
  over its valid region (a flat one, range <= FLAT_SPAN = 1e-4, becomes 0), drawn through
  matplotlib's 'jet' colour map as an exact piecewise-linear function (not its 256-entry
  lookup table) into R, G, B, then each channel z-scored as above. The authors rendered 'jet'
  images with MATLAB.

How it is computed, and why (measured on this project's 2-core CPU): the signal is framed once
with the longest window, every window centred in the same frame (a magnitude does not change
when the frame is shifted, so shorter windows are zero-padded in the middle), then one
`jnp.fft.rfft` of n_fft points per window and frame. `make_frontend` maps over the batch one
utterance at a time on CPU so that the FFT's input and output (about 6 MB each) stay in cache:
3-4x faster than one big batched FFT. A DFT matmul over only the kept bins (folded about the
window's centre, which halves it) was 2x slower than this on CPU despite using both cores.
On GPU/TPU the whole batch is vmapped in one go.

Accuracy: float32 agrees with a float64 reference to ~1e-4 after the z-score, except in bins
some 80 dB or more below their frame's level, where float32 rounding of the frame dominates
|X| (up to a few 1e-3 there; tests/test_frontend.py pins both).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.config import NORMALIZE_MODES
from adarl_jax.spec_fields import cast_fields

__all__ = [
    "FLAT_SPAN",
    "FrontendSpec",
    "THIRD_CHANNELS",
    "JET_SEGMENTS",
    "colormap_spectrogram",
    "frame_signal",
    "hamming_window",
    "jet_colormap",
    "log_magnitude_stft",
    "make_frontend",
    "masked_zscore",
    "mel_filterbank",
    "min_max_scale",
    "multi_window_spectrogram",
    "spectrogram",
    "valid_frames",
]


# multi_window: how many windows each reading of the third channel needs (3 channels in all).
THIRD_CHANNELS = {"window": 3, "mean": 2}


@dataclasses.dataclass(frozen=True)
class FrontendSpec:
    """Everything the front end needs, in samples; frozen and hashable (a static jit arg)."""

    kind: str = "multi_window"
    sample_rate: int = 16000
    hop: int = 160
    n_fft: int = 1600
    n_bins: int = 400
    n_frames: int = 300
    windows: tuple[int, ...] = (320, 480, 640)  # multi_window: one channel each
    third_channel: str = "window"  # window: a third window | mean: mean of two windows' logs
    colormap_window: int = 320
    log_floor: float = 1e-6
    zscore_eps: float = 1e-5
    scale: str = "linear"  # linear: rfft bins 0..n_bins-1; mel: n_bins mel bands up to fmax_hz
    fmax_hz: float = 8000.0
    normalize: str = "segment"  # segment: z-score each segment; speaker/utterance: raw log (dataset.group_normalize)

    @classmethod
    def from_config(cls, config) -> "FrontendSpec":
        fe, sr = config.frontend, int(config.data.sample_rate)
        samples = lambda s: int(round(float(s) * sr))
        spec = cls(
            sample_rate=sr,
            hop=samples(fe.hop_s),
            windows=tuple(samples(w) for w in fe.windows_s),
            colormap_window=samples(fe.colormap_window_s),
            **cast_fields(cls, fe, ("kind", "n_fft", "n_bins", "n_frames", "third_channel",
                                    "log_floor", "zscore_eps", "scale", "fmax_hz", "normalize")),
        )
        spec.check()
        return spec

    def check(self) -> None:
        if self.kind not in ("multi_window", "colormap"):
            raise ValueError(f"frontend.kind={self.kind!r}: expected 'multi_window' or 'colormap'")
        if self.hop < 1 or min(self.windows + (self.colormap_window,)) < 1:
            raise ValueError(f"frontend: hop ({self.hop}) and windows {self.windows} "
                             "must be >= 1 sample")
        if self.scale not in ("linear", "mel"):
            raise ValueError(f"frontend.scale={self.scale!r}: expected 'linear' or 'mel'")
        if self.normalize not in NORMALIZE_MODES:
            raise ValueError(f"frontend.normalize={self.normalize!r}: expected one of "
                             f"{', '.join(NORMALIZE_MODES)}")
        if self.scale == "linear" and not 1 <= self.n_bins <= self.n_fft // 2 + 1:
            raise ValueError(f"frontend.n_bins={self.n_bins} must be in "
                             f"1..n_fft//2+1={self.n_fft // 2 + 1}")
        if self.scale == "mel" and not 0 < self.fmax_hz <= self.sample_rate / 2:
            raise ValueError(f"frontend.fmax_hz={self.fmax_hz} must be in (0, sample_rate/2="
                             f"{self.sample_rate / 2}]")
        if self.third_channel not in THIRD_CHANNELS:
            raise ValueError(f"frontend.third_channel={self.third_channel!r}: expected one of "
                             f"{tuple(THIRD_CHANNELS)}")
        want = THIRD_CHANNELS[self.third_channel]
        if self.kind == "multi_window" and len(self.windows) != want:
            raise ValueError(f"frontend.windows_s must name {want} windows with "
                             f"third_channel={self.third_channel!r} (the input has 3 channels), "
                             f"got {len(self.windows)}: {self.windows} samples")

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """(freq, time, channels) of one segment."""
        if self.kind == "colormap":
            return (self.n_bins, self.n_frames, 3)  # R, G, B
        derived = 1 if self.third_channel == "mean" else 0
        return (self.n_bins, self.n_frames, len(self.windows) + derived)


# ---------------------------------------------------------------------------------------------
# Building blocks. Pure, jit- and vmap-able; leading (batch) axes are optional everywhere.


def hamming_window(w: int) -> np.ndarray:
    """Periodic Hamming window of w samples, float64 (= scipy.signal.get_window('hamming', w))."""
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(w) / w)


def valid_frames(lengths: jax.Array, hop: int, n_frames: int) -> jax.Array:
    """(...,) lengths -> (..., n_frames) bool: t*hop < length; frame 0 always counts."""
    t = jnp.arange(n_frames)
    return (t * hop < jnp.asarray(lengths, jnp.int32)[..., None]) | (t == 0)


def standardize_as_one_speaker(x: jax.Array, lengths: jax.Array, hop: int,
                               eps: float = 1e-5) -> jax.Array:
    """(B, F, T, C) raw spectrograms of one speaker's segments, standardised per (band,
    channel) with the mean and std (ddof 0, + eps) over every valid frame of every segment,
    as `dataset.speaker_statistics` computes them; invalid frames set to 0."""
    valid = valid_frames(lengths, hop, x.shape[2])[:, None, :, None]
    count = jnp.sum(valid, axis=(0, 2), keepdims=True)
    mean = jnp.sum(jnp.where(valid, x, 0.0), axis=(0, 2), keepdims=True) / count
    var = jnp.sum(jnp.where(valid, jnp.square(x - mean), 0.0), axis=(0, 2), keepdims=True) / count
    return jnp.where(valid, (x - mean) / (jnp.sqrt(var) + eps), 0.0)


def frame_signal(waves: jax.Array, lengths: jax.Array, frame_length: int, hop: int,
                 n_frames: int) -> jax.Array:
    """(..., L) -> (..., n_frames, frame_length); frame t holds samples t*hop - frame_length//2 + j.

    Samples at or beyond `lengths` (shape (...)) and outside the array are zero. Built from
    hop-sized blocks and static slices (no gather), which XLA fuses into one copy.
    """
    waves = jnp.asarray(waves, jnp.float32)
    *lead, length = waves.shape
    left = frame_length // 2
    n_blocks = -(-frame_length // hop)  # blocks spanned by one frame
    need = (n_frames + n_blocks - 1) * hop  # padded length that every frame fits in
    keep = jnp.arange(length) < jnp.asarray(lengths, jnp.int32)[..., None]
    x = jnp.where(keep, waves, 0.0)
    x = jnp.pad(x, [(0, 0)] * len(lead) + [(left, max(0, need - left - length))])[..., :need]
    blocks = x.reshape(*lead, need // hop, hop)
    frames = jnp.stack([blocks[..., j:j + n_frames, :] for j in range(n_blocks)], axis=-2)
    return frames.reshape(*lead, n_frames, n_blocks * hop)[..., :frame_length]


def _centred_windows(windows: tuple[int, ...], frame_length: int) -> np.ndarray:
    """(C, frame_length): window c at [frame_length//2 - w//2, ... + w), zeros elsewhere."""
    out = np.zeros((len(windows), frame_length))
    for c, w in enumerate(windows):
        start = frame_length // 2 - w // 2
        out[c, start:start + w] = hamming_window(w)
    return out


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, fmax_hz: float) -> np.ndarray:
    """(n_keep, n_mels) float64 triangular HTK-mel filters over rfft bins 0..n_keep-1.

    Band m rises linearly from edge m to a peak of 1 at edge m+1 and falls to 0 at edge m+2,
    the n_mels + 2 edges equally spaced in mel from 0 Hz to fmax_hz (no area normalisation).
    n_keep covers every bin below fmax_hz (the bins above carry no weight and are dropped).
    """
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(fmax_hz), n_mels + 2))
    n_keep = min(n_fft // 2 + 1, int(np.ceil(fmax_hz * n_fft / sample_rate)) + 1)
    freqs = np.arange(n_keep) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).T


def log_magnitude_stft(waves: jax.Array, lengths: jax.Array, windows: tuple[int, ...], hop: int,
                       n_fft: int, n_bins: int, n_frames: int, log_floor: float,
                       filterbank: np.ndarray | None = None) -> jax.Array:
    """(..., L) -> (..., C, n_frames, n_bins): log(max(|X|, floor)), one channel per window.

    Frame t of every window is centred at sample t*hop (see the module docstring). With a
    `filterbank` (n_keep, n_bins), the power of rfft bins 0..n_keep-1 is summed through it
    first: log(max(sqrt(|X|^2 @ filterbank), floor)), a log-mel magnitude.
    """
    frame_length = max(windows)
    frames = frame_signal(waves, lengths, frame_length, hop, n_frames)
    tapers = jnp.asarray(_centred_windows(windows, frame_length), jnp.float32)[:, None, :]
    x = frames[..., None, :, :] * tapers  # (..., C, T, frame_length)
    # Zero-pad to a whole number of DFTs (one fusion with the product, so the FFT reads a
    # ready buffer); a window longer than n_fft is wrapped onto n_fft points (time-aliased).
    periods = -(-frame_length // n_fft)
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, periods * n_fft - frame_length)])
    if periods > 1:
        x = x.reshape(*x.shape[:-1], periods, n_fft).sum(-2)
    spec = jnp.fft.rfft(x, axis=-1)[..., :n_bins if filterbank is None else len(filterbank)]
    power = jnp.square(spec.real) + jnp.square(spec.imag)
    if filterbank is not None:
        power = power @ jnp.asarray(filterbank, jnp.float32)
    # log|X| = log(|X|^2) / 2 without a sqrt; floor^2 = 1e-12 is still a normal float32.
    return 0.5 * jnp.log(jnp.maximum(power, jnp.float32(log_floor) ** 2))


def masked_zscore(x: jax.Array, valid: jax.Array, eps: float) -> jax.Array:
    """z-score (..., T, F) over the valid T x all F; invalid T are set to 0.

    `valid` is bool, broadcastable to x.shape[:-1]. Centred two-pass variance (ddof=0).
    """
    valid = jnp.broadcast_to(valid, x.shape[:-1])[..., None]
    # Shift by a valid value first (frame 0 always is): a constant map then gives exactly 0
    # rather than rounding noise / eps, and the float32 sums lose less.
    x = x - jax.lax.stop_gradient(x[..., :1, :1])
    count = jnp.sum(valid, axis=(-2, -1), keepdims=True) * x.shape[-1]
    mean = jnp.sum(jnp.where(valid, x, 0.0), axis=(-2, -1), keepdims=True) / count
    centred = jnp.where(valid, x - mean, 0.0)
    std = jnp.sqrt(jnp.sum(jnp.square(centred), axis=(-2, -1), keepdims=True) / count)
    return centred / (std + eps)


# A log map whose valid range is narrower than this (natural-log units, ~0.001 dB) is flat:
# its min-max scaling would only magnify rounding (e.g. a segment of one sample).
FLAT_SPAN = 1e-4


def min_max_scale(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Scale (..., T, F) to [0, 1] by its min and max over the valid T; a flat map -> all 0."""
    valid = jnp.broadcast_to(valid, x.shape[:-1])[..., None]
    lo = jnp.min(jnp.where(valid, x, jnp.inf), axis=(-2, -1), keepdims=True)
    hi = jnp.max(jnp.where(valid, x, -jnp.inf), axis=(-2, -1), keepdims=True)
    flat = hi - lo <= FLAT_SPAN
    return jnp.where(flat, 0.0, (x - lo) / jnp.where(flat, 1.0, hi - lo))


# matplotlib's 'jet' (`_jet_data` in matplotlib/_cm.py): (x, y) nodes per channel.
JET_SEGMENTS = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),  # red
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),  # green
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),  # blue
)


def jet_colormap(x: jax.Array, levels: int | None = None) -> jax.Array:
    """(...) values in [0, 1] (clipped) -> (..., 3) RGB of matplotlib's 'jet'.

    levels=None: the exact piecewise-linear map (what the front end uses). levels=N: quantised
    like an N-entry lookup table; N=256 reproduces matplotlib.cm.jet(x) exactly.
    """
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    if levels:
        x = jnp.clip(jnp.floor(x * levels), 0, levels - 1) / (levels - 1)
    rgb = []
    for seg in JET_SEGMENTS:
        # y_0 + sum of each segment's rise times how far x is through it: elementwise (fuses),
        # unlike jnp.interp's search and gather.
        y = jnp.full_like(x, seg[0][1])
        for (x0, y0), (x1, y1) in zip(seg[:-1], seg[1:]):
            if y1 != y0:
                y = y + (y1 - y0) * jnp.clip((x - x0) / (x1 - x0), 0.0, 1.0)
        rgb.append(y)
    return jnp.stack(rgb, axis=-1)


# ---------------------------------------------------------------------------------------------
# The two front ends: (..., L), (...) -> (..., n_bins, n_frames, 3)


def _to_nhwc(x: jax.Array) -> jax.Array:
    """(..., C, T, F) -> (..., F, T, C)."""
    return jnp.moveaxis(x, (-3, -2, -1), (-1, -2, -3))


def _filterbank(spec: FrontendSpec) -> np.ndarray | None:
    if spec.scale == "linear":
        return None
    return mel_filterbank(spec.n_fft, spec.sample_rate, spec.n_bins, spec.fmax_hz)


def _normalise(logs: jax.Array, valid: jax.Array, spec: FrontendSpec) -> jax.Array:
    """normalize='segment': masked_zscore; 'speaker'/'utterance': the raw values, invalid frames
    set to 0 (the dataset standardises them with the speaker's or the utterance's statistics)."""
    if spec.normalize != "segment":
        return jnp.where(jnp.broadcast_to(valid, logs.shape[:-1])[..., None], logs, 0.0)
    return masked_zscore(logs, valid, spec.zscore_eps)


def multi_window_spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec) -> jax.Array:
    """One log spectrogram per window in spec.windows, as channels (..., F, T, 3), each
    z-scored (normalize='segment') or left for per-speaker standardisation ('speaker').
    third_channel 'mean': the two windows' log spectrograms and their mean."""
    logs = log_magnitude_stft(waves, lengths, spec.windows, spec.hop, spec.n_fft, spec.n_bins,
                              spec.n_frames, spec.log_floor, _filterbank(spec))  # (..., C, T, F)
    if spec.third_channel == "mean":
        logs = jnp.concatenate([logs, logs.mean(axis=-3, keepdims=True)], axis=-3)
    valid = valid_frames(lengths, spec.hop, spec.n_frames)[..., None, :]
    return _to_nhwc(_normalise(logs, valid, spec))


def colormap_spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec,
                         levels: int | None = None) -> jax.Array:
    """The colormap_window log spectrogram drawn through 'jet'; R, G, B z-scored (..., F, T, 3)."""
    logs = log_magnitude_stft(waves, lengths, (spec.colormap_window,), spec.hop, spec.n_fft,
                              spec.n_bins, spec.n_frames, spec.log_floor,
                              _filterbank(spec))[..., 0, :, :]
    valid = valid_frames(lengths, spec.hop, spec.n_frames)
    rgb = jnp.moveaxis(jet_colormap(min_max_scale(logs, valid), levels), -1, -3)  # (..., 3, T, F)
    return _to_nhwc(_normalise(rgb, valid[..., None, :], spec))


def spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec) -> jax.Array:
    """The front end that spec.kind names."""
    if spec.kind == "multi_window":
        return multi_window_spectrogram(waves, lengths, spec)
    return colormap_spectrogram(waves, lengths, spec)


def make_frontend(config, chunk: int | None = None) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """jit-compiled `fn(waves (B, L) f32, lengths (B,) i32) -> (B, n_bins, n_frames, 3) f32`.

    `config` is a config or a FrontendSpec. `chunk` utterances are computed at a time
    (lax.map): default 1 on CPU, where it keeps the FFT in cache, and the whole batch on
    accelerators. Compiles once per input shape; `fn.spec` is the FrontendSpec.
    """
    spec = config if isinstance(config, FrontendSpec) else FrontendSpec.from_config(config)
    if chunk is None:
        chunk = 1 if jax.default_backend() == "cpu" else 0

    def frontend(waves, lengths):
        waves, lengths = jnp.asarray(waves, jnp.float32), jnp.asarray(lengths, jnp.int32)
        if not chunk or chunk >= waves.shape[0]:
            return spectrogram(waves, lengths, spec)
        return jax.lax.map(lambda a: spectrogram(*a, spec), (waves, lengths), batch_size=chunk)

    fn = jax.jit(frontend)
    fn.spec = spec
    return fn
