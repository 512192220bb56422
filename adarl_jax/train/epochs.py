"""One training epoch without host stalls: the step loop and the scanned epoch.

Both run an epoch's (steps, batch) order of training-segment indices and leave the metrics
on the device; `finish_epoch` fetches them, the step count and a finiteness check of the
parameters in one transfer at the epoch's end. The step loop places the next batch on the
devices while the current step runs (the step is dispatched asynchronously, so gathering and
copying batch i+1 overlaps step i). Its epoch means are the per-step float32 metrics summed
in float64 in step order, exactly as a loop that converts each step's metrics at once.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.train import sharding
from adarl_jax.train.train_step import make_train_epoch


def host_batches(features, segments: np.ndarray, emotion: np.ndarray, domain: np.ndarray,
                 functionals: np.ndarray | None, order: np.ndarray):
    """The epoch's batches on the host: {x, emotion, domain} per row of `order` (and the
    segments' `functionals` (n_train, d), indexed as emotion is, when the model reads them)."""
    for idx in order:
        batch = {"x": np.asarray(features[segments[idx]], np.float32), "emotion": emotion[idx],
                 "domain": domain[idx]}
        if functionals is not None:
            batch["functionals"] = functionals[idx]
        yield batch


class StepLoop:
    """One jitted (donated) step a batch, the next batch prefetched to the devices."""

    def __init__(self, train_step, mesh, features, segments, emotion, domain, functionals=None):
        self.step = sharding.jit_train_step(train_step, mesh)
        self.mesh = mesh
        self.data = (features, segments, emotion, domain, functionals)

    def __call__(self, state, order: np.ndarray, on_step: Callable[[], None] = lambda: None):
        metrics = []
        # every batch is full (epoch_order), so one placed array of ones serves every step
        weight = sharding.put_batch({"w": np.ones(order.shape[1], np.float32)}, self.mesh)["w"]
        for batch in sharding.prefetch_batches(host_batches(*self.data, order), self.mesh):
            state, m = self.step(state, {**batch, "weight": weight})
            metrics.append(m)
            on_step()
        return state, metrics


def held_rows(n: int) -> int:
    """The rows the scanned epoch holds for a training set of `n` >= 1 segments: the smallest
    m * 2**k >= n with 8 <= m < 16 (n itself up to 16), at most 1/8 more than n. The set's
    size is in the scanned epoch's program; folds whose sizes round to the same count (and
    that have the same steps per epoch and step) share one compiled epoch."""
    if n < 1:
        raise ValueError(f"a training set of {n} segments: expected at least 1")
    if n <= 16:
        return int(n)
    k = int(n).bit_length() - 4  # 2**k * 8 <= n < 2**k * 16
    return -(-int(n) // 2 ** k) * 2 ** k


class ScanLoop:
    """The epoch as one compiled lax.scan over the training set held on the devices, padded
    to `held_rows` rows (zeros of weight 0 that no epoch order indexes: the same batches, the
    same result, one program for folds of nearly one size with the same steps per epoch)."""

    def __init__(self, train_step, mesh, features, segments, emotion, domain, functionals=None,
                 train_epoch=None):
        # train_epoch: make_train_epoch(train_step, ...) built once for a job's runs (programs)
        self.epoch = sharding.jit_train_epoch(
            train_epoch or make_train_epoch(train_step, sharding.batch_sharded(mesh)), mesh)
        self.mesh = mesh
        self.n = len(segments)
        data = {"x": np.asarray(features[segments], np.float32), "emotion": emotion,
                "domain": domain, "weight": np.ones(len(segments), np.float32)}
        if functionals is not None:
            data["functionals"] = functionals
        self.data = sharding.put_replicated(
            {k: sharding.pad_rows(np.asarray(v), held_rows(self.n)) for k, v in data.items()}, mesh)

    def __call__(self, state, order: np.ndarray, on_step: Callable[[], None] = lambda: None):
        outside = order[(order < 0) | (order >= self.n)]
        if outside.size:
            raise IndexError(f"the epoch order indexes segment {int(outside.flat[0])} of a "
                             f"training set of {self.n}")
        state, m = self.epoch(state, self.data, sharding.put_replicated(order, self.mesh))
        for _ in range(len(order)):
            on_step()
        return state, [m]  # already the epoch's means


@jax.jit
def all_finite(tree) -> jax.Array:
    """One device-side reduction: True when every element of every leaf is finite.

    The leaves of each dtype are concatenated and reduced once (no dtype promotion; the
    parameters are one dtype): a reduction per leaf compiled ~3x slower on XLA:CPU, once per
    variant and process."""
    by_dtype: dict = {}
    for x in jax.tree.leaves(tree):
        if jnp.issubdtype(x.dtype, jnp.inexact):
            by_dtype.setdefault(jnp.dtype(x.dtype), []).append(jnp.ravel(x))
    finite = [jnp.all(jnp.isfinite(jnp.concatenate(v))) for v in by_dtype.values()]
    return jnp.all(jnp.stack(finite)) if finite else jnp.asarray(True)


def finish_epoch(metrics: list[dict], state) -> tuple[dict[str, float], int, bool]:
    """(epoch means, step, params finite) from the device in one transfer.

    `metrics` is one dict per step (their mean is taken here, float64 in step order) or one
    dict of means (the scanned epoch)."""
    host, step, finite = jax.device_get((metrics, state.step, all_finite(state.params)))
    sums: dict[str, float] = {}
    for m in host:
        for k, v in m.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    return {k: v / len(host) for k, v in sums.items()}, int(step), bool(finite)


def check_diverged(means: dict, finite: bool, where: str, step: int, lr) -> None:
    """FloatingPointError when the epoch's mean loss or the parameters are not finite."""
    if np.isfinite(means["loss"]) and finite:
        return
    terms = ", ".join(f"{k} {v:.4g}" for k, v in means.items())
    what = (f"the training loss is {means['loss']}" if not np.isfinite(means["loss"])
            else "the parameters are not finite")
    raise FloatingPointError(
        f"{where}, step {step}: {what} (diverged; epoch means: {terms}); lower optim.lr (now "
        f"{lr}). Nothing of this fold was kept past its last checkpoint; finished folds are "
        f"untouched")
