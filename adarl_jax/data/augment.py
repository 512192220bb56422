"""Data augmentation on spectrogram batches, pure and jit-able: (key, x) -> x.

For small corpora (EmoDB has 339 utterances): SpecAugment-style frequency and time masks
(Park et al., 2019) and a random frequency-axis warp, which approximates vocal-tract-length
perturbation (Jaitly & Hinton, 2013) and so varies what the domain pathway could memorise
about a speaker; and mixup (Zhang et al., 2018), which mixes pairs of samples and their
targets. All off by default (the paper uses none).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _band_mask(key, n: int, count: int, max_width: int, batch: int):
    """(batch, n) bool: `count` random bands of width 0..max_width per sample."""
    k1, k2 = jax.random.split(key)
    width = jax.random.randint(k1, (batch, count), 0, max_width + 1)
    start = jax.random.randint(k2, (batch, count), 0, n)
    pos = jnp.arange(n)[None, None, :]
    inside = (pos >= start[..., None]) & (pos < (start + width)[..., None])
    return inside.any(axis=1)


def spec_mask(key, x, freq_masks: int, freq_width: float, time_masks: int, time_width: float):
    """Zeroes random frequency rows and time columns (zero = the z-scored mean)."""
    b, f, t, _ = x.shape
    kf, kt = jax.random.split(key)
    keep = jnp.ones((b, f, t), bool)
    if freq_masks:
        keep &= ~_band_mask(kf, f, freq_masks, max(int(freq_width * f), 1), b)[:, :, None]
    if time_masks:
        keep &= ~_band_mask(kt, t, time_masks, max(int(time_width * t), 1), b)[:, None, :]
    return x * keep[..., None].astype(x.dtype)


def freq_warp(key, x, max_warp: float):
    """Stretches each sample's frequency axis by a random factor in [1 - w, 1 + w]
    (linear interpolation; rows beyond the top are zero)."""
    b, f, _, _ = x.shape
    alpha = jax.random.uniform(key, (b,), minval=1 - max_warp, maxval=1 + max_warp)
    src = jnp.arange(f)[None, :] / alpha[:, None]  # output row r reads input row r / alpha
    lo = jnp.clip(jnp.floor(src).astype(jnp.int32), 0, f - 1)
    hi = jnp.clip(lo + 1, 0, f - 1)
    frac = (src - jnp.floor(src))[:, :, None, None].astype(x.dtype)
    take = jax.vmap(lambda xi, idx: xi[idx])
    warped = take(x, lo) * (1 - frac) + take(x, hi) * frac
    return warped * (src < f - 1)[:, :, None, None].astype(x.dtype)


def mixup(key, batch: dict, alpha: float):
    """Mixes every sample with a random partner of its batch: x = lam x_i + (1 - lam) x_p(i),
    one lam ~ Beta(alpha, alpha) per batch. Returns (x, batch_i, batch_p, lam): the loss is
    lam L(batch_i) + (1 - lam) L(batch_p), each the batch's labels (own or the partner's)
    with the pair's weight w_i w_p(i), so padding never counts."""
    k_lam, k_perm = jax.random.split(key)
    b = batch["x"].shape[0]
    lam = jax.random.beta(k_lam, alpha, alpha).astype(batch["x"].dtype)
    perm = jax.random.permutation(k_perm, b)
    x = lam * batch["x"] + (1 - lam) * batch["x"][perm]
    weight = batch["weight"] * batch["weight"][perm]
    own = {"emotion": batch["emotion"], "domain": batch["domain"], "weight": weight}
    partner = {"emotion": batch["emotion"][perm], "domain": batch["domain"][perm], "weight": weight}
    return x, own, partner, lam


def make_augment(config):
    """(key, x) -> x for config.augment, or None when every augmentation is off."""
    a = config.augment
    if not (a.freq_masks or a.time_masks or a.freq_warp):
        return None

    def augment(key, x):
        k1, k2 = jax.random.split(key)
        if a.freq_warp:
            x = freq_warp(k1, x, float(a.freq_warp))
        if a.freq_masks or a.time_masks:
            x = spec_mask(k2, x, int(a.freq_masks), float(a.freq_mask_width),
                          int(a.time_masks), float(a.time_mask_width))
        return x

    return augment
