"""BatchNorm -> ReLU -> average pool (stride = size) as one op with a hand-written gradient.

Every multi-scale block ends with these three (Eq. 10). Written as `nn.BatchNorm`, `nn.relu`
and `nn.avg_pool`, XLA:CPU differentiates the pool as a `reduce_window` transpose and keeps
BatchNorm's backward in several passes over the block's largest activation (32 x 400 x 300 x
32 floats in block 1 at the paper's input): that backward was most of a train step
(benchmarks/README.md, 'Where the time goes'). Here the forward is the same arithmetic as
Flax's in float32 and float64 (fast variance, clipped at 0; statistics in at least float32);
with a bfloat16 compute dtype the ReLU and pool run in float32 and the result is cast once
(Flax rounds to bfloat16 before them: outputs differ by a bfloat16 rounding step). The
backward is the textbook BatchNorm gradient with the pool's gradient as a broadcast, which
XLA fuses into two passes over the input. `BatchNormReLUPool` has the same parameters and batch statistics as
`nn.BatchNorm` (scale, bias; mean, var), so checkpoints of either path load into the other.
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


def batch_stats(x):
    """Per-channel mean and biased variance over (N, H, W), as nn.BatchNorm computes them."""
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = x.mean((0, 1, 2))
    var = jnp.maximum(0.0, jnp.square(x).mean((0, 1, 2)) - jnp.square(mean))
    return mean, var


def normalize_relu_pool(x, mean, var, scale, bias, pool: tuple[int, int], dtype):
    """pool(ReLU((x - mean) / sqrt(var + eps) * scale + bias)), statistics given (inference)."""
    mul = jax.lax.rsqrt(var + EPSILON) * scale
    z = jax.nn.relu((x - mean) * mul + bias)
    return _pool(z, pool).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_relu_pool(x, scale, bias, pool: tuple[int, int], dtype):
    """Train mode: normalise by the batch's own statistics. Returns (out, mean, var)."""
    return _forward(x, scale, bias, pool, dtype)[0]


def _forward(x, scale, bias, pool, dtype):
    mean, var = batch_stats(x)
    out = normalize_relu_pool(x, mean, var, scale, bias, pool, dtype)
    return (out, mean, var), (x, mean, var, scale, bias)


def _backward(pool, dtype, residuals, cotangents):
    x, mean, var, scale, bias = residuals
    g_out, g_mean, g_var = cotangents
    n = x.shape[0] * x.shape[1] * x.shape[2]
    b, h, w, c = x.shape
    ph, pw = pool
    if h % ph or w % pw:  # a remainder the VALID pool dropped: spread the gradient in 4-D
        view, g_z = x, _unpool(g_out, pool, x.shape)
    else:  # (b, h/ph, ph, w/pw, pw, c): the pool's gradient is a broadcast XLA never materialises
        view = x.reshape(b, h // ph, ph, w // pw, pw, c)
        g_z = g_out[:, :, None, :, None, :] / (ph * pw)
    axes = tuple(range(view.ndim - 1))
    inv = jax.lax.rsqrt(var + EPSILON)
    xhat = (view - mean) * inv
    # ReLU's mask from the forward's own expression, so that it rounds as the forward did.
    g_z = jnp.where((view - mean) * (inv * scale) + bias > 0, g_z.astype(xhat.dtype), 0.0)
    g_bias = g_z.sum(axes)
    g_scale = (g_z * xhat).sum(axes)
    # d/dx of BatchNorm with batch statistics, plus whatever flows into mean and var themselves.
    g_x = (scale * inv) * (g_z - g_bias / n - xhat * (g_scale / n))
    g_x = g_x + g_mean / n + g_var * (2.0 / n) * (view - mean)
    return g_x.reshape(x.shape).astype(x.dtype), g_scale.astype(scale.dtype), g_bias.astype(bias.dtype)


batch_norm_relu_pool.defvjp(_forward, _backward)


class BatchNormReLUPool(nn.Module):
    """nn.BatchNorm + nn.relu + nn.avg_pool(pool, strides=pool) in one fused op.

    Same variables as `nn.BatchNorm` under this module's name: params scale/bias, batch_stats
    mean/var, updated with `momentum` as Flax does (not while initialising).
    """

    pool: Sequence[int] = (1, 1)
    momentum: float = 0.9
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        pool = tuple(int(p) for p in self.pool)
        if not train:
            return normalize_relu_pool(x, ra_mean.value, ra_var.value, scale, bias, pool, self.dtype)
        out, mean, var = batch_norm_relu_pool(x, scale, bias, pool, jnp.dtype(self.dtype))
        if not self.is_initializing():
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return out
