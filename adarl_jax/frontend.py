"""The spectrogram front end (SPEC.md section 2; the paper's Sec. 3.1): pure functions in jnp.

A batch of 3 s segments `waves (B, L)` with true lengths `lengths (B,)` becomes the model's
input `(B, n_bins, n_frames, 3)` (NHWC: batch, frequency, time, channels). All constants come
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
  frame); it only arises in shrunken test configs. Log magnitude: log(max(|X|, log_floor)).
* Valid frames are those with t*hop < length, so n_valid = clip(ceil(length / hop), 1, n_frames).
* z-score per segment and channel over all kept bins x valid frames:
  (x - mean) / (std + zscore_eps), std with ddof=0. Frames that are not valid are exactly 0
  ("short segments are zero-padded in time after normalisation").
* kind 'multi_window' (default): channel c is the log spectrogram with window windows_s[c]
  (20, 30, 40 ms), each z-scored on its own.
* kind 'colormap': one log spectrogram with colormap_window_s (20 ms), min-max scaled to [0, 1]
  over its valid region (a constant one becomes 0), drawn through matplotlib's 'jet' colour map
  as an exact piecewise-linear function (not its 256-entry lookup table) into R, G, B, then
  each channel z-scored as above. The authors rendered 'jet' images with MATLAB.

How it is computed (why it is fast on a CPU): the signal is framed once with the longest
window, every frame centred on the same sample; a magnitude does not change when the frame is
shifted, so each shorter window is the middle of that frame. The DFT is a matmul over the
kept bins only, and for an even-length (symmetric) window the frame is first folded about
its centre -- x[c+n] + x[c-n] for the cosine part, x[c+n] - x[c-n] for the sine part -- which
halves the matmul. On this project's 2-core CPU that is about 1.5-2x faster than
`jnp.fft.rfft` on n_fft points (which computes 801 bins to keep 400), and it is a plain
matmul for accelerators (run at `Precision.HIGHEST`, so TPUs do not round it to bf16).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FrontendSpec",
    "JET_SEGMENTS",
    "colormap_spectrogram",
    "dft_bases",
    "frame_signal",
    "hamming_window",
    "jet_colormap",
    "log_magnitude_stft",
    "make_frontend",
    "masked_zscore",
    "min_max_scale",
    "multi_window_spectrogram",
    "spectrogram",
    "valid_frames",
]

_HIGHEST = jax.lax.Precision.HIGHEST


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
    colormap_window: int = 320
    log_floor: float = 1e-6
    zscore_eps: float = 1e-5

    @classmethod
    def from_config(cls, config) -> "FrontendSpec":
        fe, sr = config.frontend, int(config.data.sample_rate)
        samples = lambda s: int(round(float(s) * sr))
        spec = cls(
            kind=str(fe.kind),
            sample_rate=sr,
            hop=samples(fe.hop_s),
            n_fft=int(fe.n_fft),
            n_bins=int(fe.n_bins),
            n_frames=int(fe.n_frames),
            windows=tuple(samples(w) for w in fe.windows_s),
            colormap_window=samples(fe.colormap_window_s),
            log_floor=float(fe.log_floor),
            zscore_eps=float(fe.zscore_eps),
        )
        spec.check()
        return spec

    def check(self) -> None:
        if self.kind not in ("multi_window", "colormap"):
            raise ValueError(f"frontend.kind={self.kind!r}: expected 'multi_window' or 'colormap'")
        if self.hop < 1 or min(self.windows + (self.colormap_window,)) < 1:
            raise ValueError(f"frontend: hop ({self.hop}) and windows {self.windows} must be >= 1 sample")
        if not 1 <= self.n_bins <= self.n_fft // 2 + 1:
            raise ValueError(f"frontend.n_bins={self.n_bins} must be in 1..n_fft//2+1={self.n_fft // 2 + 1}")
        if self.kind == "multi_window" and len(self.windows) != 3:
            raise ValueError(f"frontend.windows_s must name 3 windows (one per channel), got {self.windows}")

    @property
    def channel_windows(self) -> tuple[int, ...]:
        """The window length of each spectrogram computed (3 for multi_window, 1 for colormap)."""
        return self.windows if self.kind == "multi_window" else (self.colormap_window,)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (self.n_bins, self.n_frames, 3)


# ---------------------------------------------------------------------------------------------
# Building blocks (pure; jit- and vmap-able; static arguments are Python ints / tuples)


def hamming_window(w: int) -> np.ndarray:
    """Periodic Hamming window of w samples, float64 (= scipy.signal.get_window('hamming', w))."""
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(w) / w)


def valid_frames(lengths: jax.Array, hop: int, n_frames: int) -> jax.Array:
    """(..., n_frames) bool: frame t is valid iff t*hop < length (and frame 0 always is)."""
    t = jnp.arange(n_frames)
    lengths = jnp.asarray(lengths, jnp.int32)[..., None]
    return (t * hop < lengths) | (t == 0)


def frame_signal(waves: jax.Array, lengths: jax.Array, frame_length: int, hop: int,
                 n_frames: int) -> jax.Array:
    """(..., L) -> (..., n_frames, frame_length): frame t holds samples t*hop - frame_length//2 + j.

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
    pad = [(0, 0)] * len(lead) + [(left, max(0, need - left - length))]
    x = jnp.pad(x, pad)[..., :need]
    blocks = x.reshape(*lead, need // hop, hop)
    frames = jnp.stack([blocks[..., j:j + n_frames, :] for j in range(n_blocks)], axis=-2)
    return frames.reshape(*lead, n_frames, n_blocks * hop)[..., :frame_length]


def dft_bases(frame_length: int, windows: tuple[int, ...], n_fft: int, n_bins: int):
    """Windowed real-DFT matrices (float64 numpy) for frames of `frame_length` samples.

    Returns, for each window, ('fold', rows, cos_matrix, sin_matrix) when the window has even
    length (see `_fold`) and ('plain', offset, matrix) otherwise; each window is centred in the
    frame like `frame_signal` centres it.
    """
    centre = frame_length // 2
    k = np.arange(n_bins)
    out = []
    for w in windows:
        win = hamming_window(w)
        offset = centre - w // 2  # window start inside the frame
        if w % 2 == 0:
            # Phase reference at the window's centre sample (frame index `centre`).
            half = w // 2
            n = np.arange(half)
            angle = 2.0 * np.pi * np.outer(n, k) / n_fft
            edge = 2.0 * np.pi * k * half / n_fft  # the unpaired first sample, at -half
            g = win[half:]  # g[n] = win[half + n] = win[half - n]
            cos_m = np.vstack([g[:, None] * np.cos(angle), win[0] * np.cos(edge)[None]])
            sin_m = np.vstack([-g[:, None] * np.sin(angle), win[0] * np.sin(edge)[None]])
            out.append(("fold", half, offset, cos_m, sin_m))
        else:
            angle = 2.0 * np.pi * np.outer(np.arange(w), k) / n_fft
            mat = np.hstack([win[:, None] * np.cos(angle), -win[:, None] * np.sin(angle)])
            out.append(("plain", w, offset, mat, None))
    return tuple(out)


def log_magnitude_stft(frames: jax.Array, windows: tuple[int, ...], n_fft: int, n_bins: int,
                       log_floor: float) -> jax.Array:
    """(..., T, F) frames from `frame_signal` -> (..., len(windows), n_bins, T) log |STFT|.

    Each window is centred in the frame (F >= every window); the DFT is a matmul over the kept
    bins, folded about the centre for even windows (half the work, exact in real arithmetic).
    """
    frame_length = frames.shape[-1]
    centre = frame_length // 2
    bases = dft_bases(frame_length, windows, n_fft, n_bins)
    half_max = max([b[1] for b in bases if b[0] == "fold"], default=0)
    if half_max:
        right = frames[..., centre + 1:centre + half_max]  # x[c+n], n = 1 .. half_max-1
        left = jnp.flip(frames[..., centre - half_max + 1:centre], -1)  # x[c-n]
        even = jnp.concatenate([frames[..., centre:centre + 1], right + left], -1)
        odd = jnp.concatenate([jnp.zeros_like(frames[..., :1]), right - left], -1)
    dot = lambda x, m: jnp.einsum("...tn,nk->...kt", x, jnp.asarray(m, jnp.float32), precision=_HIGHEST)
    power = []
    for kind, size, offset, m1, m2 in bases:
        if kind == "fold":
            edge = frames[..., offset:offset + 1]  # the window's unpaired first sample
            re = dot(jnp.concatenate([even[..., :size], edge], -1), m1)
            im = dot(jnp.concatenate([odd[..., :size], edge], -1), m2)
        else:
            both = dot(frames[..., offset:offset + size], m1)
            re, im = both[..., :n_bins, :], both[..., n_bins:, :]
        power.append(re * re + im * im)
    power = jnp.stack(power, axis=-3)
    # log|X| = log(|X|^2) / 2 without a sqrt; floor^2 = 1e-12 is a normal float32.
    return 0.5 * jnp.log(jnp.maximum(power, jnp.float32(log_floor) ** 2))


def masked_zscore(x: jax.Array, valid: jax.Array, eps: float) -> jax.Array:
    """z-score (..., C, F, T) over F x valid T per leading index and channel; invalid T -> 0.

    `valid` is (..., T) bool. Two passes (mean, then centred variance) for float32 accuracy.
    """
    mask = valid[..., None, None, :].astype(x.dtype)
    # Shift by a value of the valid region first: a constant map then gives exactly 0 (not
    # rounding noise / eps), and the float32 sums lose less.
    x = x - jax.lax.stop_gradient(x[..., :1, :1])
    count = jnp.sum(mask, axis=(-2, -1), keepdims=True) * x.shape[-2]
    mean = jnp.sum(x * mask, axis=(-2, -1), keepdims=True) / count
    var = jnp.sum(jnp.square((x - mean) * mask), axis=(-2, -1), keepdims=True) / count
    return jnp.where(mask > 0, (x - mean) / (jnp.sqrt(var) + eps), 0.0)


def min_max_scale(x: jax.Array, valid: jax.Array) -> jax.Array:
    """Scale (..., F, T) to [0, 1] by its min and max over the valid T; a constant map -> 0."""
    v = valid[..., None, :]
    lo = jnp.min(jnp.where(v, x, jnp.inf), axis=(-2, -1), keepdims=True)
    hi = jnp.max(jnp.where(v, x, -jnp.inf), axis=(-2, -1), keepdims=True)
    span = hi - lo
    return jnp.where(span > 0, (x - lo) / jnp.where(span > 0, span, 1.0), 0.0)


# matplotlib's 'jet' (matplotlib/_cm.py `_jet_data`): (x, y) nodes per channel.
JET_SEGMENTS = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),  # red
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),  # green
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),  # blue
)


def jet_colormap(x: jax.Array, levels: int | None = None) -> jax.Array:
    """(...,) values in [0, 1] (clipped) -> (..., 3) RGB of matplotlib's 'jet'.

    levels=None: the exact piecewise-linear map. levels=N: quantised like a colormap lookup
    table of N entries (N=256 reproduces matplotlib.cm.jet(x) exactly; MATLAB's default is 64).
    """
    x = jnp.clip(jnp.asarray(x, jnp.float32), 0.0, 1.0)
    if levels:
        x = jnp.clip(jnp.floor(x * levels), 0, levels - 1) / (levels - 1)
    rgb = [jnp.interp(x, jnp.array([p for p, _ in seg], jnp.float32),
                      jnp.array([v for _, v in seg], jnp.float32)) for seg in JET_SEGMENTS]
    return jnp.stack(rgb, axis=-1)


# ---------------------------------------------------------------------------------------------
# The two front ends: (B, L), (B,) -> (B, n_bins, n_frames, 3)


def _log_spectrograms(waves, lengths, spec: FrontendSpec, windows: tuple[int, ...]):
    frames = frame_signal(waves, lengths, max(windows), spec.hop, spec.n_frames)
    return log_magnitude_stft(frames, windows, spec.n_fft, spec.n_bins, spec.log_floor)


def multi_window_spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec) -> jax.Array:
    """One z-scored log spectrogram per window in spec.windows, as channels (B, F, T, 3)."""
    logs = _log_spectrograms(waves, lengths, spec, spec.windows)  # (B, C, F, T)
    valid = valid_frames(lengths, spec.hop, spec.n_frames)
    return jnp.moveaxis(masked_zscore(logs, valid, spec.zscore_eps), -3, -1)


def colormap_spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec,
                         levels: int | None = None) -> jax.Array:
    """The colormap_window log spectrogram drawn through 'jet', RGB z-scored (B, F, T, 3)."""
    logs = _log_spectrograms(waves, lengths, spec, (spec.colormap_window,))[..., 0, :, :]
    valid = valid_frames(lengths, spec.hop, spec.n_frames)
    rgb = jet_colormap(min_max_scale(logs, valid), levels)  # (B, F, T, 3)
    return jnp.moveaxis(masked_zscore(jnp.moveaxis(rgb, -1, -3), valid, spec.zscore_eps), -3, -1)


def spectrogram(waves: jax.Array, lengths: jax.Array, spec: FrontendSpec) -> jax.Array:
    """The front end that spec.kind names."""
    if spec.kind == "multi_window":
        return multi_window_spectrogram(waves, lengths, spec)
    return colormap_spectrogram(waves, lengths, spec)


def make_frontend(config) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """jit-compiled `fn(waves (B, L) f32, lengths (B,) i32) -> (B, n_bins, n_frames, 3) f32`.

    Compiles once per input shape; `fn.spec` is the FrontendSpec it was built from.
    """
    spec = config if isinstance(config, FrontendSpec) else FrontendSpec.from_config(config)
    fn = jax.jit(lambda waves, lengths: spectrogram(waves, lengths, spec))
    fn.spec = spec
    return fn
