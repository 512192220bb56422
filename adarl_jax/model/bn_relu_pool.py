"""BatchNorm -> ReLU -> average pool (stride = size) as one op with a hand-written gradient.

Every multi-scale block ends with these three (Eq. 10). Written as `nn.BatchNorm`, `nn.relu`
and `nn.avg_pool`, XLA:CPU differentiates the pool as a `reduce_window` transpose and keeps
BatchNorm's backward in several passes over the block's largest activation (32 x 400 x 300 x 32
floats in block 1 at the paper's input): that backward was most of a train step
(benchmarks/README.md, 'Where the time goes'). Here the statistics are Flax's (fast variance,
clipped at 0; in at least float32) and the backward is the textbook BatchNorm gradient with the
pool's gradient as a broadcast. Where the pool tiles its input exactly (in `quick`, blocks 1
and 2), the training forward sums, per window, the units the ReLU passes and their normalised
inputs (both in one variadic reduction, which XLA:CPU computes in one pass from its inputs),
and pools from those two sums: the same function, rounded differently (within 1e-10 of
Flax's in float64, tests/test_bn_relu_pool.py), and the backward takes the gradients of scale
and bias from the two small sums instead of two more passes over the activation (a train step
of `quick` 0.87-0.90x the time on one core; the pooled output, scale * t + bias * s0, can
round to about 1e-7 |bias| below 0 where every unit of a window is near 0). The statistics can
come from another arrangement of the input's values (`stats_of`: block 1's convolution output
on 2 x 2 blocks, before the bias), so that XLA does not write the input out for their
reductions; with the one-pass sums, a train step of `quick` 0.73-0.83x the time again on one
core (benchmarks/README.md; measured on XLA:CPU only, not on accelerators or two threads).
Without a pool, or where it drops a remainder, the forward is Flax's arithmetic, the ReLU a
select. With a bfloat16 compute dtype the ReLU and pool run in float32 and the result is cast
once (Flax rounds to bfloat16 before them: outputs differ by a bfloat16 rounding step).
Inference (running statistics) is Flax's arithmetic. `BatchNormReLUPool` has the same
parameters and batch statistics as `nn.BatchNorm` (scale, bias; mean, var), so checkpoints of
either path load into the other.
`tests/test_bn_relu_pool.py` checks outputs, gradients and statistics against the plain path.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

EPSILON = 1e-5  # nn.BatchNorm's default


def _pool(z, pool: tuple[int, int]):
    """Average pool over (H, W) with stride = size, VALID (a remainder is dropped)."""
    if pool == (1, 1):
        return z
    window = (1, *pool, 1)
    return jax.lax.reduce_window(z, 0.0, jax.lax.add, window, window, "VALID") / (pool[0] * pool[1])


def _unpool(g, pool: tuple[int, int], shape):
    """The transpose of `_pool`: each output's gradient spread evenly over its window."""
    if pool == (1, 1):
        return g
    b, ho, wo, c = g.shape
    ph, pw = pool
    g = jnp.broadcast_to(g[:, :, None, :, None, :] / (ph * pw), (b, ho, ph, wo, pw, c))
    g = g.reshape(b, ho * ph, wo * pw, c)
    h, w = shape[1], shape[2]
    if (h, w) != (ho * ph, wo * pw):  # rows/columns the VALID pool dropped get no gradient
        g = jnp.pad(g, ((0, 0), (0, h - ho * ph), (0, w - wo * pw), (0, 0)))
    return g


def batch_stats(x, shift=None):
    """Per-channel mean and biased variance over every axis but the last (the channels), as
    nn.BatchNorm computes them over (N, H, W); with `shift` (per channel), those of x + shift,
    the shift added to the mean alone (the variance does not move with it)."""
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = jnp.maximum(0.0, jnp.square(x).mean(axes) - jnp.square(mean))
    return (mean, var) if shift is None else (mean + shift.astype(mean.dtype), var)


def _normalized(x, mean, inv, scale, bias):
    """BatchNorm's output before the ReLU, `inv` = 1 / sqrt(var + eps): one expression for the
    forward and for the mask of the backward, so that both round alike."""
    return (x - mean) * (inv * scale) + bias


def _passes(xhat, scale, bias):
    """Where the ReLU passes, from the normalised input xhat: the window-sum forward's and its
    backward's one mask."""
    return xhat * scale + bias > 0


def normalize_relu_pool(x, mean, var, scale, bias, pool: tuple[int, int], dtype):
    """pool(ReLU((x - mean) / sqrt(var + eps) * scale + bias)), statistics given (inference)."""
    z = _normalized(x, mean, jax.lax.rsqrt(var + EPSILON), scale, bias)
    # ReLU as a select: written as jnp.maximum(z, 0), XLA:CPU's library fusion of the pool reads
    # a materialised array of zeros the activation's size (`quick`'s inference forward, one
    # core: about 64 ms a batch of 32 instead of 88; benchmarks/README.md)
    z = jnp.where(z > 0, z, 0.0)
    return _pool(z, pool).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def batch_norm_relu_pool(x, stats_of, scale, bias, pool: tuple[int, int], dtype):
    """Train mode: normalise by the batch's own statistics. Returns (out, mean, var).
    `stats_of`: None, or (values, shift or None) holding x - shift in another order, the
    statistics' source (`BatchNormReLUPool`); no gradient flows through it (x's carries
    theirs)."""
    return _forward(x, stats_of, scale, bias, pool, dtype)[0]


def _windows(x, pool: tuple[int, int]):
    """x as (b, h/ph, ph, w/pw, pw, c), each pool window on its own two axes, when the pool
    tiles x exactly (a free reshape); else None."""
    b, h, w, c = x.shape
    ph, pw = pool
    if pool == (1, 1) or h % ph or w % pw:
        return None
    return x.reshape(b, h // ph, ph, w // pw, pw, c)


def _add_pairwise(p, q):
    return tuple(u + v for u, v in zip(p, q))


def _window_sums(*arrays):
    """Each (b, h/ph, ph, w/pw, pw, c) array summed over its windows' axes, all in one
    variadic reduction: XLA:CPU computes it in one pass from the arrays' inputs, where a sum
    each goes to its library (YNNPACK), which takes every input written out first."""
    zero = tuple(jnp.zeros((), a.dtype) for a in arrays)
    return jax.lax.reduce(arrays, zero, _add_pairwise, (2, 4))


def _forward(x, stats_of, scale, bias, pool, dtype):
    mean, var = batch_stats(x) if stats_of is None else batch_stats(*stats_of)
    view = _windows(x, pool)
    if view is None:
        out = normalize_relu_pool(x, mean, var, scale, bias, pool, dtype)
        return (out, mean, var), (x, mean, var, scale, bias, None, None)
    # Per window, the count of units the ReLU passes (s0) and the sum of their normalised
    # inputs (t): the pool is (scale * t + bias * s0) / (ph * pw), and the backward needs only
    # these two (b, h/ph, w/pw, c) sums for the gradients of scale and bias, instead of two
    # more passes over the block's largest activation.
    inv = jax.lax.rsqrt(var + EPSILON)
    xhat = (view - mean) * inv
    on = _passes(xhat, scale, bias)
    s0, t = _window_sums(on.astype(xhat.dtype), jnp.where(on, xhat, 0.0))
    out = ((scale * t + bias * s0) / (pool[0] * pool[1])).astype(dtype)
    return (out, mean, var), (x, mean, var, scale, bias, s0, t)


def _backward(pool, dtype, residuals, cotangents):
    x, mean, var, scale, bias, s0, t = residuals
    g_out, g_mean, g_var = cotangents
    n = x.shape[0] * x.shape[1] * x.shape[2]
    ph, pw = pool
    inv = jax.lax.rsqrt(var + EPSILON)
    view = _windows(x, pool)
    if view is None:  # no pool, or a remainder it dropped: the pool's gradient spread in 4-D
        view, g_z = x, _unpool(g_out, pool, x.shape)
        xhat = (view - mean) * inv
        g_z = jnp.where(_normalized(view, mean, inv, scale, bias) > 0, g_z.astype(xhat.dtype), 0.0)
        axes = tuple(range(view.ndim - 1))
        g_bias = g_z.sum(axes)
        g_scale = (g_z * xhat).sum(axes)
    else:  # the pool's gradient a broadcast over each window, XLA never materialises it
        g_win = g_out.astype(s0.dtype) / (ph * pw)
        g_bias = (g_win * s0).sum((0, 1, 2))
        g_scale = (g_win * t).sum((0, 1, 2))
        xhat = (view - mean) * inv
        g_z = jnp.where(_passes(xhat, scale, bias), g_win[:, :, None, :, None, :], 0.0)
    # d/dx of BatchNorm with batch statistics, plus whatever flows into mean and var themselves.
    g_x = (scale * inv) * (g_z - g_bias / n - xhat * (g_scale / n))
    g_x = g_x + g_mean / n + g_var * (2.0 / n) * (view - mean)
    return (g_x.reshape(x.shape).astype(x.dtype), None, g_scale.astype(scale.dtype),
            g_bias.astype(bias.dtype))


batch_norm_relu_pool.defvjp(_forward, _backward)


def _check_stats_of(x, values, shift):
    """ValueError unless `values` could hold x's values (as many, channels last) and `shift`
    is None or one per channel."""
    c = x.shape[-1]
    if values.shape[-1] != c or values.size != x.size:
        raise ValueError(f"BatchNormReLUPool: stats_of's values {values.shape} cannot hold the "
                         f"values of its input {x.shape} (as many, channels last)")
    if shift is not None and shift.shape != (c,):
        raise ValueError(f"BatchNormReLUPool: stats_of's shift {shift.shape} is not one per "
                         f"channel ({c},)")


class BatchNormReLUPool(nn.Module):
    """nn.BatchNorm + nn.relu + nn.avg_pool(pool, strides=pool) in one fused op.

    Same variables as `nn.BatchNorm` under this module's name: params scale/bias, batch_stats
    mean/var, updated with `momentum` as Flax does (not while initialising).
    """

    pool: Sequence[int] = (1, 1)
    momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool, stats_of=None):
        """`stats_of`: (values, shift or None), x's values minus a per-channel shift in any
        arrangement with the channels last, e.g. a convolution's output before its bias in
        the convolution's own order (`layers.space_to_depth_blocks`). The batch statistics are
        read from them (the shift added to the mean), so that XLA need not write x out for
        the reductions when x is a rearrangement. The same statistics within rounding (summed
        in another order; the variance before the shift, so with less cancellation; with a
        bfloat16 dtype, those of values + shift before x was rounded to bfloat16). The caller
        vouches that they are x's (only their shapes are checked): no gradient flows through
        them (x's gradient carries the statistics' part)."""
        c = x.shape[-1]
        if stats_of is not None:
            _check_stats_of(x, *stats_of)
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        pool = tuple(int(p) for p in self.pool)
        if not train:
            return normalize_relu_pool(x, ra_mean.value, ra_var.value, scale, bias, pool, self.dtype)
        out, mean, var = batch_norm_relu_pool(x, stats_of, scale, bias, pool,
                                              jnp.dtype(self.dtype))
        if not self.is_initializing():
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return out
