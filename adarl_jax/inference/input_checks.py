"""Inputs the model can read, but not as it was trained to: the lines `predict` puts in a
row's warning column (the row is still predicted).

  short_clip_warning   a clip shorter than the minimum segment (data.min_tail_s): padded
                       with silence to a whole segment, so most of what the model sees is not
                       the recording
  band_warning         a recording whose sample rate leaves the model's upper bands empty
                       (8 kHz audio has nothing above 4 kHz; resampling adds nothing there)
  repeat_warning       the same file given more than once in one call: predicted once, a row
                       each time it was given, each with this notice (its audio counts once
                       in any speaker statistics)
"""

from __future__ import annotations

import numpy as np

from adarl_jax.data.frontend import FrontendSpec, hz_to_mel, mel_to_hz

__all__ = ["band_warning", "empty_bands", "repeat_warning", "short_clip_warning"]


def short_clip_warning(seconds: float | None, min_tail_s: float, segment_s: float,
                       trimmed: bool = False) -> str | None:
    """`seconds`: the audio the model sees (`trimmed`: what is left after the silence trim)."""
    if seconds is None or seconds >= min_tail_s:
        return None
    what = " of speech after the silence trim" if trimmed else ""
    return (f"short: {seconds:.2f} s{what}, under the {min_tail_s:g} s minimum segment; padded "
            f"with silence to {segment_s:g} s")


def empty_bands(rate: float, spec: FrontendSpec) -> int:
    """How many of the model's frequency bands lie wholly above `rate`'s Nyquist frequency:
    mel bands whose lower edge is at or above it, linear bins whose frequency is above it."""
    nyquist = rate / 2
    if spec.scale == "mel":
        edges = mel_to_hz(np.linspace(0.0, hz_to_mel(spec.fmax_hz), spec.n_bins + 2))
        return int(np.sum(edges[:spec.n_bins] >= nyquist))
    freqs = np.arange(spec.n_bins) * spec.sample_rate / spec.n_fft
    return int(np.sum(freqs > nyquist))


def band_warning(rate: float | None, spec: FrontendSpec) -> str | None:
    n = 0 if rate is None else empty_bands(rate, spec)
    if not n:
        return None
    top = spec.fmax_hz if spec.scale == "mel" else (spec.n_bins - 1) * spec.sample_rate / spec.n_fft
    return (f"band-limited: recorded at {rate:g} Hz, nothing above {rate / 2:g} Hz, but the "
            f"model's bands reach {top:g} Hz ({n} of {spec.n_bins} bands empty)")


def repeat_warning(times: int) -> str | None:
    if times < 2:
        return None
    return f"given {times} times in this call: predicted once, a row each time"
