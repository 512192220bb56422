"""Independent float64 numpy references of the front end's definition (no FFT, no framing
tricks), shared by the front-end and recipe tests."""

import numpy as np
import scipy.signal


def ref_log_spectrogram(x, length, w, hop, n_fft, n_bins, n_frames, floor):
    """(n_bins, n_frames) log(max(|DFT|, floor)) of the periodic-Hamming frames centred at t*hop."""
    x = np.asarray(x, np.float64)
    clean = np.zeros(len(x))
    clean[:length] = x[:length]
    window = scipy.signal.get_window("hamming", w)  # periodic by default
    n = np.arange(w)
    dft = np.exp(-2j * np.pi * np.outer(n, np.arange(n_bins)) / n_fft)  # sums over the window
    out = np.empty((n_bins, n_frames))
    for t in range(n_frames):
        idx = t * hop - w // 2 + n
        inside = (idx >= 0) & (idx < len(x))
        frame = np.where(inside, clean[np.clip(idx, 0, len(x) - 1)], 0.0)
        out[:, t] = np.log(np.maximum(np.abs((frame * window) @ dft), floor))
    return out


def ref_zscore(channels, n_valid, eps):
    """channels (C, F, T) -> (F, T, C) z-scored over the first n_valid frames, the rest 0."""
    out = np.zeros_like(channels)
    v = channels[:, :, :n_valid]
    mean = v.mean(axis=(1, 2), keepdims=True)
    std = v.std(axis=(1, 2), keepdims=True)
    out[:, :, :n_valid] = (v - mean) / (std + eps)
    return np.moveaxis(out, 0, -1)
