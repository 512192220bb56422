"""Block 1's convolutions on 2 x 2 blocks of the input (`model.first_convs='space_to_depth'`):
the same function as nn.Conv's, against a numpy cross-correlation, with the same gradient and
the same parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.config import input_shape, load_config
from adarl_jax.model.layers import direct_convs, space_to_depth_blocks, space_to_depth_convs
from adarl_jax.model.spec import ModelSpec
from adarl_jax.train import losses
from adarl_jax.train.train_step import create_train_state_from_config


def numpy_same_convs(x, kernels):
    """'SAME' stride-1 cross-correlations (what lax and nn.Conv compute), tap by tap in float64."""
    b, h, w, _ = x.shape
    out = []
    for k in kernels:
        kh, kw = k.shape[:2]
        xp = np.pad(x.astype(np.float64), ((0, 0), ((kh - 1) // 2, kh // 2),
                                           ((kw - 1) // 2, kw // 2), (0, 0)))
        y = np.zeros((b, h, w, k.shape[-1]))
        for i in range(kh):
            for j in range(kw):
                y += xp[:, i:i + h, j:j + w, :] @ k[i, j].astype(np.float64)
        out.append(y)
    return np.concatenate(out, axis=-1)


@pytest.mark.parametrize("shape, sizes", [
    ((9, 7), [(3, 3), (5, 5)]),      # odd height and width: padded, then cropped
    ((8, 6), [(3, 3), (3, 5)]),      # the paper reading's kernels
    ((10, 12), [(1, 1), (7, 3)]),    # a 1 x 1 and a wider block kernel
    ((5, 4), [(5, 5)]),              # a kernel as large as the input
])
def test_space_to_depth_equals_a_numpy_cross_correlation(shape, sizes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *shape, 3)).astype(np.float32)
    kernels = tuple(rng.standard_normal((*s, 3, 4)).astype(np.float32) for s in sizes)
    want = numpy_same_convs(x, kernels)
    got = np.asarray(jax.jit(space_to_depth_convs)(jnp.asarray(x), kernels))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(direct_convs(x, kernels)), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape", [(8, 6), (9, 6), (8, 7)])
def test_the_block_layout_holds_the_outputs_and_passes_their_gradient(shape):
    """`space_to_depth_blocks`' second output: each output position's value once, sub-position
    (i, j) of block (r, c) at [r, c, 2 i + j] (None where H or W is odd); losses on both
    outputs have the gradients (kernels and input) of the same losses on `direct_convs`."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, *shape, 3)), jnp.float32)
    kernels = tuple(jnp.asarray(rng.standard_normal((*s, 3, 4)), jnp.float32)
                    for s in [(3, 3), (5, 5)])
    y, blocks = space_to_depth_blocks(x, kernels)
    if shape[0] % 2 or shape[1] % 2:
        assert blocks is None
        return
    h2, w2 = shape[0] // 2, shape[1] // 2
    assert blocks.shape == (2, h2, w2, 4, 8)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(blocks[:, :, :, 2 * i + j], y[:, i::2, j::2])
    w1, w2 = (jnp.asarray(rng.standard_normal(y.shape), jnp.float32) for _ in range(2))
    w2_blocks = w2.reshape(2, h2, 2, w2.shape[2] // 2, 2, 8).transpose(0, 1, 3, 2, 4, 5)

    def on_both(x, ks):  # a loss on each output: both cotangents reach the kernels and x
        y, blocks = space_to_depth_blocks(x, ks)
        return jnp.sum(jnp.sin(y) * w1) + jnp.sum(jnp.cos(blocks) * w2_blocks.reshape(blocks.shape))

    def on_direct(x, ks):
        y = direct_convs(x, ks)
        return jnp.sum(jnp.sin(y) * w1) + jnp.sum(jnp.cos(y) * w2)

    got = jax.grad(on_both, argnums=(0, 1))(x, kernels)
    want = jax.grad(on_direct, argnums=(0, 1))(x, kernels)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def numpy_kernel_gradient(x, g, kh, kw):
    """d sum(g * conv(x, K)) / dK for one 'SAME' kernel of size (kh, kw): tap by tap, float64."""
    b, h, w, _ = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2),
                                       (0, 0)))
    return np.stack([np.stack([np.einsum("bhwc,bhwo->co", xp[:, i:i + h, j:j + w, :], g)
                               for j in range(kw)]) for i in range(kh)])


def test_the_kernel_gradient_equals_a_numpy_reference():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    kernels = tuple(rng.standard_normal((*s, 3, 4)).astype(np.float32) for s in [(3, 3), (5, 3)])
    g = rng.standard_normal((2, 9, 8, 8)).astype(np.float32)
    grads = jax.grad(lambda ks: jnp.sum(space_to_depth_convs(jnp.asarray(x), ks) * g))(kernels)
    for grad, k, gi in zip(grads, kernels, (g[..., :4], g[..., 4:])):
        np.testing.assert_allclose(grad, numpy_kernel_gradient(x, gi.astype(np.float64), *k.shape[:2]),
                                   rtol=1e-4, atol=1e-3)


def test_its_gradient_is_the_direct_convolutions_gradient():
    """The custom VJP: kernel and input cotangents equal jax's own gradient of direct_convs."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((3, 10, 8, 3)), jnp.float32)
    kernels = tuple(jnp.asarray(rng.standard_normal((*s, 3, 5)), jnp.float32)
                    for s in [(3, 3), (5, 5)])
    target = jnp.asarray(rng.standard_normal((3, 10, 8, 10)), jnp.float32)

    def loss(f):
        return jax.jit(jax.grad(lambda x, ks: jnp.sum((f(x, ks) - target) ** 2), argnums=(0, 1)))

    (gx, gk), (wx, wk) = loss(space_to_depth_convs)(x, kernels), loss(direct_convs)(x, kernels)
    np.testing.assert_allclose(gx, wx, rtol=1e-4, atol=1e-3)
    for a, b in zip(gk, wk):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def _state(first_convs: str):
    config = load_config("smoke", [f"model.first_convs={first_convs}", "model.variant=adarl"])
    model, state, _ = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 4)
    return config, model, state


def test_the_model_has_the_same_parameters_outputs_and_gradients():
    """Same parameter tree and values from the same key; outputs and gradients equal within
    float rounding. The convolutions' biases are left out of the gradient check: the BatchNorm
    after every convolution cancels them, so theirs is rounding noise in both."""
    config, direct, state = _state("direct")
    _, s2d, state2 = _state("space_to_depth")
    assert jax.tree.structure(state.params) == jax.tree.structure(state2.params)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(state2.params)):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((8, *input_shape(config))), jnp.float32)
    outs = [m.apply(state.eval_variables, x, train=False)["emotion_logits"] for m in (direct, s2d)]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    batch = {"emotion": jnp.asarray(rng.integers(0, 4, 8), jnp.int32),
             "domain": jnp.asarray(rng.integers(0, 2, 8), jnp.int32), "weight": jnp.ones(8)}

    def grads(model):
        def loss(params):
            out, _ = model.apply({"params": params, "batch_stats": state.batch_stats}, x,
                                 train=True, mutable=["batch_stats"])
            return losses.total_loss(out, batch, (1.0, 1.0, 0.5), state.class_weights, 0.0)[0]
        return jax.tree_util.tree_flatten_with_path(jax.jit(jax.grad(loss))(state.params))[0]

    checked = 0
    for (path, a), (_, b) in zip(grads(direct), grads(s2d)):
        name = jax.tree_util.keystr(path)
        if "['conv" in name and name.endswith("['bias']"):
            continue
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * float(jnp.abs(a).max()) + 1e-7,
                                   err_msg=jax.tree_util.keystr(path))
        checked += 1
    assert checked > 40  # every kernel, BatchNorm scale and bias, dense layer, centre


def test_an_unknown_formulation_or_a_kernel_without_a_centre_is_refused_by_name():
    with pytest.raises(ValueError, match="model.first_convs='winograd'"):
        ModelSpec(num_classes=4, first_convs="winograd")
    with pytest.raises(ValueError, match="needs odd kernel sizes.*model.kernel_sizes"):
        ModelSpec(num_classes=4, first_convs="space_to_depth", kernel_sizes=((3, 3), (4, 4)))
    with pytest.raises(ValueError, match="model.shared_first_conv"):
        ModelSpec(num_classes=4, first_convs="space_to_depth", shared_first_conv=True)
    with pytest.raises(ValueError, match="odd kernel sizes"):
        space_to_depth_convs(jnp.zeros((1, 4, 4, 3)), (jnp.zeros((2, 2, 3, 1)),))
