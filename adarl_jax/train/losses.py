"""Eq. 6-9: the domain and emotion cross-entropies and the centre loss, with masks.

Every term is a weighted mean over the samples that carry its label: `emotion < 0` marks a
sample with a domain label only (the paper's last remark in 2.3), `weight == 0` marks padding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _masked_mean(values, mask):
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1e-8)


def cross_entropy(logits, labels, mask, label_smoothing: float = 0.0):
    """Eq. 6/7: mean over masked samples of -log softmax(logits)[label]; with smoothing s the
    target is (1 - s) one-hot + s / classes (optax.smooth_labels)."""
    safe = jnp.maximum(labels, 0)
    if label_smoothing:
        targets = optax.smooth_labels(jax.nn.one_hot(safe, logits.shape[-1]), label_smoothing)
        return _masked_mean(optax.softmax_cross_entropy(logits, targets), mask)
    return _masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, safe), mask)


def center_loss(features, centers, labels, mask):
    """Eq. 8: mean over masked samples of ||x_i - c_{y_i}||_2^2."""
    diff = features - centers[jnp.maximum(labels, 0)]
    return _masked_mean(jnp.sum(diff * diff, axis=-1), mask)


def total_loss(outputs: dict, batch: dict, weights, class_weights=None, label_smoothing: float = 0.0):
    """Eq. 9: g1 * L^D + g2 * L^E + g3 * L^E_cen. Returns (loss, metrics).

    The emotion term is the cross-entropy of `emotion_logits`, or, for a variant that returns
    `emotion_heads` (a tuple of logits, e.g. a CNN head and a functionals head whose mixture
    is `emotion_logits`), the mean of each head's own cross-entropy: the heads learn
    independently and only their prediction is combined.

    weights: (domain, emotion, center). class_weights: optional (num_classes,) factors that
    re-weight the emotion terms per class (class-balanced loss). label_smoothing: applied to
    the emotion cross-entropy only.
    """
    g1, g2, g3 = weights
    w = batch["weight"].astype(jnp.float32)
    emotion, domain = batch["emotion"], batch["domain"]
    emo_mask = w * (emotion >= 0)
    if class_weights is not None:
        emo_mask = emo_mask * class_weights[jnp.maximum(emotion, 0)]
    dom_mask = w * (domain >= 0)

    logits = outputs["emotion_logits"]
    heads = outputs.get("emotion_heads")  # a variant whose heads each learn the labels alone
    l_emo = (cross_entropy(logits, emotion, emo_mask, label_smoothing) if heads is None else
             sum(cross_entropy(h, emotion, emo_mask, label_smoothing) for h in heads) / len(heads))
    l_cen = center_loss(outputs["deep_feature"], outputs["centers"], emotion, emo_mask)
    loss = g2 * l_emo + g3 * l_cen
    plain_emo = w * (emotion >= 0)
    metrics = {
        "loss_emotion": l_emo,
        "loss_center": l_cen,
        "accuracy_emotion": _masked_mean((jnp.argmax(logits, -1) == emotion).astype(jnp.float32), plain_emo),
        "n_emotion": jnp.sum(plain_emo),
    }
    if "domain_logits" in outputs:
        l_dom = cross_entropy(outputs["domain_logits"], domain, dom_mask)
        loss = loss + g1 * l_dom
        metrics["loss_domain"] = l_dom
        metrics["accuracy_domain"] = _masked_mean(
            (jnp.argmax(outputs["domain_logits"], -1) == domain).astype(jnp.float32), dom_mask)
    metrics["loss"] = loss
    return loss, metrics
