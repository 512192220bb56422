"""The fused BatchNorm + ReLU + pool (hand-written gradient) against the plain Flax composition.

Both sides in float64, so that a real difference, not float32 summation order, is what the
tolerance would catch. The plain side is flax's own nn.BatchNorm, nn.relu and nn.avg_pool,
differentiated by jax.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.model import bn_relu_pool
from adarl_jax.model.bn_relu_pool import BatchNormReLUPool
from adarl_jax.model.layers import MultiScaleConvBlock


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


class PlainBNReLUPool(nn.Module):
    pool: tuple = (1, 1)

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=jnp.float64, name="bn")(x)
        x = nn.relu(x)
        return nn.avg_pool(x, self.pool, strides=self.pool) if self.pool != (1, 1) else x


class FusedBNReLUPool(nn.Module):
    pool: tuple = (1, 1)
    # read the statistics from x's values shifted and in another order (`stats_of`), as
    # space_to_depth's block 1 hands them over: positions reversed, a per-channel shift taken
    stats_elsewhere: bool = False

    @nn.compact
    def __call__(self, x, train: bool):
        stats_of = None
        if self.stats_elsewhere:
            shift = jnp.linspace(-3.0, 2.0, x.shape[-1], dtype=x.dtype)
            stats_of = ((x - shift).reshape(-1, x.shape[-1])[::-1].reshape(2, -1, x.shape[-1]), shift)
        return BatchNormReLUPool(self.pool, 0.9, jnp.float64, name="bn")(x, train, stats_of)


def _as64(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _random_variables(module, x, seed):
    variables = _as64(module.init(jax.random.key(0), x, train=False))
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
    c = x.shape[-1]
    return {"params": {"bn": {"scale": 1 + 0.3 * jax.random.normal(k1, (c,), jnp.float64),
                              "bias": 0.5 * jax.random.normal(k2, (c,), jnp.float64)}},
            "batch_stats": {"bn": {"mean": 0.1 * jax.random.normal(k3, (c,), jnp.float64),
                                   "var": 1 + jax.random.uniform(k4, (c,), jnp.float64)}}}


# (shape, pool): divisible, a remainder the VALID pool drops on both axes, block 2's (2, 2),
# and no pool (block 4).
CASES = [((3, 10, 15, 4), (5, 5)), ((2, 12, 13, 3), (5, 5)), ((2, 8, 6, 5), (2, 2)),
         ((4, 6, 5, 3), (1, 1))]


@pytest.mark.parametrize("stats_elsewhere", [False, True])
@pytest.mark.parametrize("shape,pool", CASES)
def test_fused_equals_plain_outputs_statistics_and_gradients(shape, pool, stats_elsewhere):
    """With `stats_elsewhere` the statistics come from a rearranged, shifted copy of x that
    carries no gradient: x's gradient alone must still be the whole of it."""
    x = 2.0 + 1.5 * jax.random.normal(jax.random.key(1), shape, jnp.float64)  # mean far from 0
    plain, fused = PlainBNReLUPool(pool), FusedBNReLUPool(pool, stats_elsewhere)
    variables = _random_variables(plain, x, seed=sum(shape))
    out_shape = jax.eval_shape(lambda: plain.apply(variables, x, train=False)).shape
    cotangent = jax.random.normal(jax.random.key(2), out_shape, jnp.float64)

    def loss(module, params, x):
        out, updates = module.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                    train=True, mutable=["batch_stats"])
        # The new running statistics enter the loss too, so that the gradient through the
        # batch mean and variance outputs is checked, not only through the normalised output.
        stats = updates["batch_stats"]["bn"]
        return jnp.vdot(out, cotangent) + jnp.sum(stats["mean"] ** 3) + jnp.sum(stats["var"] ** 2), \
            (out, updates)

    results = {}
    for name, module in (("plain", plain), ("fused", fused)):
        grad_fn = jax.grad(lambda p, x: loss(module, p, x), argnums=(0, 1), has_aux=True)
        (g_params, g_x), (out, updates) = jax.jit(grad_fn)(variables["params"], x)
        eval_out = module.apply(variables, x, train=False)
        results[name] = dict(out=out, stats=updates["batch_stats"], g_params=g_params, g_x=g_x,
                             eval_out=eval_out)
    assert results["fused"]["out"].shape == out_shape
    assert float(jnp.abs(results["plain"]["g_x"]).max()) > 1e-3  # a gradient that is not ~0
    for key in results["plain"]:
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                             rtol=1e-10, atol=1e-12, err_msg=key),
                     results["fused"][key], results["plain"][key])


@pytest.mark.parametrize("convs,width,use_bias", [
    ("direct", 15, True),
    ("space_to_depth", 20, True),   # `quick`'s path: block layout, a pool that tiles
    ("space_to_depth", 20, False),  # the same without convolution biases
    ("space_to_depth", 16, True),   # block layout, a pool that drops a remainder
    ("space_to_depth", 15, True),   # odd width: no block layout
])
def test_fused_block_equals_plain_block(convs, width, use_bias):
    """A whole multi-scale block (convs, concat, then the fused op) both ways, same variables;
    the fused one's convolutions as `convs` computes them (space_to_depth: on 2 x 2 blocks, the
    statistics read from the block layout where the width is even)."""
    x = jax.random.normal(jax.random.key(3), (2, 20, width, 3), jnp.float64)
    blocks = {f: MultiScaleConvBlock((4, 4), pool=(5, 5), use_bias=use_bias, dtype=jnp.float64,
                                     fused=f, convs=convs if f else "direct") for f in (True, False)}
    variables = _as64(blocks[False].init(jax.random.key(4), x, train=False))
    assert jax.tree.structure(variables) == jax.tree.structure(
        _as64(blocks[True].init(jax.random.key(4), x, train=False)))

    def loss(block, params):
        out, updates = block.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                   train=True, mutable=["batch_stats"])
        return jnp.sum(jnp.sin(out)), updates

    if use_bias:  # biases that do not cancel to 0 in the running mean
        variables["params"] = jax.tree.map(lambda a: a + 0.3, variables["params"])
    got = jax.grad(lambda p: loss(blocks[True], p), has_aux=True)(variables["params"])
    want = jax.grad(lambda p: loss(blocks[False], p), has_aux=True)(variables["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), got, want)


def test_the_block_layout_reaches_the_statistics(monkeypatch):
    """With space_to_depth and an even input, the statistics are read from the 5-D block
    layout (what the equality above cannot tell from reading the spread output)."""
    seen = []
    real = bn_relu_pool.batch_stats
    monkeypatch.setattr(bn_relu_pool, "batch_stats", lambda v, *a: seen.append(v.ndim) or real(v, *a))
    x = jax.random.normal(jax.random.key(3), (2, 20, 20, 3), jnp.float64)
    for convs in ("direct", "space_to_depth"):
        block = MultiScaleConvBlock((4, 4), pool=(5, 5), dtype=jnp.float64, convs=convs)
        variables = block.init(jax.random.key(4), x, train=False)
        seen.clear()
        block.apply(variables, x, train=True, mutable=["batch_stats"])
        assert seen == ([4] if convs == "direct" else [5])


def test_the_statistics_are_those_of_stats_of_and_its_shapes_are_checked():
    """The running statistics move towards the mean (+ shift) and variance of stats_of's values,
    not x's; values that cannot be x's, or a shift not one per channel, are refused by name."""
    x = jax.random.normal(jax.random.key(7), (2, 10, 10, 3), jnp.float64)
    values = 3.0 + 2.0 * jax.random.normal(jax.random.key(8), (200, 3), jnp.float64)
    shift = jnp.asarray([1.0, -2.0, 0.5])
    module = BatchNormReLUPool((5, 5), 0.9, jnp.float64)
    variables = module.init(jax.random.key(0), x, train=False)
    _, updates = module.apply(variables, x, train=True, stats_of=(values, shift),
                              mutable=["batch_stats"])
    stats = updates["batch_stats"]
    np.testing.assert_allclose(stats["mean"], 0.1 * (np.mean(values, 0) + shift), rtol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * np.var(values, 0), rtol=1e-6)
    for bad, what in (((values[:100], shift), "cannot hold"), ((values, shift[:2]), "one per")):
        with pytest.raises(ValueError, match=what):
            module.apply(variables, x, train=True, stats_of=bad, mutable=["batch_stats"])


@pytest.mark.parametrize("convs,width", [("direct", 15), ("space_to_depth", 20)])
def test_bfloat16_compute_keeps_float32_variables_and_tracks_plain_path(convs, width):
    """The accelerator setting: bfloat16 activations, float32 parameters and statistics."""
    with jax.enable_x64(False):
        x = jax.random.normal(jax.random.key(5), (2, 10, width, 4), jnp.bfloat16)
        results = {}
        for fused in (True, False):
            block = MultiScaleConvBlock((3, 3), pool=(5, 5), dtype=jnp.bfloat16, fused=fused,
                                        convs=convs if fused else "direct")
            variables = block.init(jax.random.key(6), x, train=False)

            def loss(params):
                out, updates = block.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                           x, train=True, mutable=["batch_stats"])
                return jnp.sum(jnp.square(out.astype(jnp.float32))), (out, updates)

            grads, (out, updates) = jax.grad(loss, has_aux=True)(variables["params"])
            results[fused] = (out, updates, grads)
        out, updates, grads = results[True]
        assert out.dtype == jnp.bfloat16
        assert {a.dtype for a in jax.tree.leaves((updates, grads))} == {jnp.dtype(jnp.float32)}
        flat = lambda tree: np.concatenate([np.ravel(np.asarray(a, np.float32)) for a in jax.tree.leaves(tree)])
        for got, want in zip(results[True], results[False]):  # output, statistics, gradients
            # against each collection's largest value: the conv biases' gradients are rounding
            # noise around an exact 0 (a bias before BatchNorm cancels)
            got, want = flat(got), flat(want)
            np.testing.assert_allclose(got, want, rtol=0.05, atol=0.02 * float(np.abs(want).max()))


class Plain32(nn.Module):
    pool: tuple = (1, 1)

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x))
        return nn.avg_pool(x, self.pool, strides=self.pool)


class Fused32(nn.Module):
    pool: tuple = (1, 1)

    @nn.compact
    def __call__(self, x, train: bool):
        return BatchNormReLUPool(self.pool, 0.9, jnp.float32, name="bn")(x, train)


def test_float32_window_sums_track_the_plain_path_with_large_biases():
    """The pooled output is scale * t + bias * s0 (sums per window): in float32 with |bias| up to
    ~10 it stays within float32 rounding of Flax's composition (scaled by |bias|), and so do the
    gradients of scale and bias."""
    with jax.enable_x64(False):
        x = 2.0 + 1.5 * jax.random.normal(jax.random.key(5), (4, 10, 15, 6), jnp.float32)
        c = x.shape[-1]
        variables = Plain32((5, 5)).init(jax.random.key(0), x, train=False)
        params = {"bn": {"scale": 1 + 0.3 * jax.random.normal(jax.random.key(6), (c,)),
                         "bias": 6.0 * jax.random.normal(jax.random.key(7), (c,))}}
        cotangent = jax.random.normal(jax.random.key(8), (4, 2, 3, c), jnp.float32)

        def grads(module):
            def loss(p):
                out, _ = module.apply({"params": p, "batch_stats": variables["batch_stats"]}, x,
                                      train=True, mutable=["batch_stats"])
                return jnp.vdot(out, cotangent), out
            return jax.grad(loss, has_aux=True)(params)

        (g_fused, out_fused), (g_plain, out_plain) = grads(Fused32((5, 5))), grads(Plain32((5, 5)))
        big = float(jnp.abs(params["bn"]["bias"]).max())
        assert big > 3.0 and out_fused.dtype == jnp.float32
        np.testing.assert_allclose(out_fused, out_plain, rtol=1e-5, atol=2e-6 * big)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
                     g_fused, g_plain)
