"""Inference over spectrogram segments: the one function from (variables, x) to outputs.

`make_predict_fn(model)` is pure: (variables, x (B, F, T, 3), functionals (B, d) or None) -> the
model's outputs with the softmax probabilities added (`emotion_probs`, and `domain_probs` for a model with a domain
head). An utterance's probabilities are the mean of its segments' (Sec. 3.1); that mean is the
caller's part. Everything that infers builds on this function:

  BatchedInference   segment arrays (validation, test) in fixed-size padded batches, jitted
                     and sharded over a device mesh (`sharding.jit_predict`)
  segment_outputs    (probabilities, deep features) of one model or the mean probabilities of
                     an ensemble (leading axis on every variable): what `predict.Predictor`
                     jits behind its front end and what `export` serialises
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from adarl_jax.model import reads_functionals
from adarl_jax.train import sharding

__all__ = ["BatchedInference", "make_predict_fn", "segment_outputs"]


def make_predict_fn(model) -> Callable:
    """Pure inference: (variables, x, functionals=None) -> outputs dict (softmax probabilities
    added). `functionals` (B, d): each segment's utterance's, for a variant that reads them."""

    def predict(variables, x, functionals=None):
        inputs = {} if functionals is None else {"functionals": functionals}
        out = model.apply(variables, x, train=False, **inputs)
        out = dict(out)
        out.pop("centers", None)
        out.pop("emotion_heads", None)  # training's: predictions read emotion_logits
        out["emotion_probs"] = jax.nn.softmax(out["emotion_logits"], axis=-1)
        if "domain_logits" in out:
            out["domain_probs"] = jax.nn.softmax(out["domain_logits"], axis=-1)
        return out

    return predict


def segment_outputs(model, n_models: int = 1) -> Callable:
    """(variables, x) -> (emotion probabilities (B, K), deep features (B, D)), float32 as
    every variant's outputs are (`model.pathways.outputs`).

    With n_models > 1 every variable has a leading axis of that size (an ensemble, e.g. all
    LOSO folds): the probabilities are the members' mean and the features are None, since
    each member's deep features live in a space of its own and their mean would mean nothing.
    """
    predict = make_predict_fn(model)

    def one(variables, x, functionals=None):
        out = predict(variables, x, functionals)
        return out["emotion_probs"], out["deep_feature"]

    def outputs(variables, x, functionals=None):
        if n_models == 1:
            return one(variables, x, functionals)
        return jax.vmap(one, in_axes=(0, None, None))(variables, x, functionals)[0].mean(axis=0), None

    return outputs


class BatchedInference:
    """Jitted inference over segment arrays in fixed-size, padded batches (no recompiles).

    `__call__(variables, features (n, F, T, 3), functionals (n, d) or None)` -> {output name:
    (n, ...) numpy array}, the outputs of `make_predict_fn` ({} for n = 0). Every batch has `batch_size` rows (the last
    one zero-padded, its padding cut from the result), split over the mesh's data axis; up to
    `in_flight` batches are dispatched before the first of them is fetched, so the host copies
    one batch while the devices compute the next.
    """

    def __init__(self, model, mesh, batch_size: int, in_flight: int = 8,
                 functionals: bool | None = None):
        self.mesh = mesh
        self.in_flight = in_flight
        self.batch_size = batch_size
        self.predict = sharding.jit_predict(make_predict_fn(model), mesh)
        # whether to pass functionals (default: whether `model`, a registered variant, reads them)
        self.reads_functionals = reads_functionals(model) if functionals is None else functionals

    def __call__(self, variables, features, functionals=None) -> dict[str, np.ndarray]:
        n = len(features)
        if self.reads_functionals and functionals is None:
            raise ValueError("this model reads functionals: pass one row per segment")
        done, pending = [], []  # up to `in_flight` batches dispatched before one is fetched
        for start in range(0, n, self.batch_size):
            x, u = (None if a is None else self._padded(a[start:start + self.batch_size])
                    for a in (features, functionals if self.reads_functionals else None))
            pending.append(self.predict(variables, x, u))
            if len(pending) >= self.in_flight:
                done.extend(jax.device_get(pending))
                pending = []
        done.extend(jax.device_get(pending))
        return {k: np.concatenate([o[k] for o in done])[:n] for k in (done[0] if done else {})}

    def _padded(self, rows):
        """`rows` as a full batch (zero rows appended) on the devices, split over the mesh."""
        x = sharding.pad_rows(np.asarray(rows, np.float32), self.batch_size)
        return jax.device_put(x, sharding.batch_sharded(self.mesh))
