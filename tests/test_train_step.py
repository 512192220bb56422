"""The train step: sharded over 8 simulated devices it equals the single-device step."""

import jax
import numpy as np
import pytest

from adarl_jax.train import sharding
from adarl_jax.config import input_shape
from adarl_jax.train.optim import learning_rate_schedule, make_optimizer
from adarl_jax.train.train_step import create_train_state, create_train_state_from_config, make_train_step
from conftest import in_float64, tiny_config


def _batches(config, n_steps, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    shape = input_shape(config)
    for _ in range(n_steps):
        emotion = rng.integers(0, 4, batch_size).astype(np.int32)
        emotion[0] = -1  # one sample with a domain label only
        yield {"x": rng.normal(size=(batch_size, *shape)),
               "emotion": emotion,
               "domain": rng.integers(0, 2, batch_size).astype(np.int32),
               "weight": np.ones(batch_size, np.float32)}


def pools_with_a_remainder(config):
    """The four blocks' pools: 5 x 5, then 2 x 2 until one meets an odd side (and drops its
    last row or column), then none."""
    h, w = config.frontend.n_bins // 5, config.frontend.n_frames // 5
    pools = [(5, 5), (2, 2)]
    while h % 2 == 0 and w % 2 == 0:
        h, w = h // 2, w // 2
        pools.append((2, 2))
    assert len(pools) <= 4, "the input is too large for a remainder within four blocks"
    return tuple(pools + [(1, 1)] * (4 - len(pools)))


def _train(config, mesh, n_steps=3):
    model, state, tx = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 2)
    state = sharding.put_replicated(in_float64(state), mesh)
    step = sharding.jit_train_step(
        make_train_step(model, tx, (1.0, 1.0, 0.5), learning_rate_schedule(config, 2)), mesh)
    history = []
    for batch in _batches(config, n_steps, config.optim.batch_size):
        state, m = step(state, sharding.put_batch(batch, mesh))
        history.append(jax.device_get(m))
    return jax.device_get(state), history


@pytest.mark.parametrize("variant", ["adarl", "domain_invariant"])
def test_sharded_step_equals_single_device_step(variant):
    """In float64 (so that only a real difference shows: in float32 the other summation order
    of the cross-device reductions gives ~1e-7 a step, which 8-sample BatchNorm amplifies).
    Per-device BatchNorm statistics (1 sample a device) would differ by O(1)."""
    assert jax.device_count() >= 8, "conftest should simulate 8 CPU devices"
    config = tiny_config(variant)
    config.optim.momentum = 0.9
    config.model.dtype = "float64"
    config.model.block_pools = pools_with_a_remainder(config)
    with jax.enable_x64(True):
        single, h1 = _train(config, sharding.make_mesh(1))
        sharded, h8 = _train(config, sharding.make_mesh(8))
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(sharded.params)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    for a, b in zip(jax.tree.leaves(single.batch_stats), jax.tree.leaves(sharded.batch_stats)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    for m1, m8 in zip(h1, h8):
        for k in m1:
            np.testing.assert_allclose(m1[k], m8[k], rtol=1e-9, atol=1e-10, err_msg=k)
    assert int(single.step) == 3
    assert h1[0]["lr"] == pytest.approx(0.2) and h1[2]["lr"] == pytest.approx(0.2 * 0.7)


@pytest.mark.parametrize("option,variant,conv_bias", [
    ("fused_bn_pool", "adarl", True), ("fused_bn_pool", "domain_invariant", True),
    ("shared_first_conv", "adarl", True), ("shared_first_conv", "adarl", False)])
def test_fast_path_step_equals_plain_flax_step(option, variant, conv_bias):
    """Each fast path of the default model trains exactly as the plain Flax model without it
    (3 steps, float64): `fused_bn_pool` (BatchNorm + ReLU + pool as one op, its gradient by
    hand; every block's pool: 5x5, 2x2 until one drops a row or column, none) and
    `shared_first_conv` (adarl's two pathways' block-1 convolutions as one, from their own
    kernels, with and without conv biases)."""
    config = tiny_config(variant)
    config.model.block_pools = pools_with_a_remainder(config)
    config.model.dtype = "float64"
    config.model.conv_bias = conv_bias
    config.model[option] = True
    with jax.enable_x64(True):
        fused, h_fused = _train(config, sharding.make_mesh(1))
        config.model[option] = False
        plain, h_plain = _train(config, sharding.make_mesh(1))
    assert jax.tree.structure(fused.params) == jax.tree.structure(plain.params)
    for a, b in zip(jax.tree.leaves((fused.params, fused.batch_stats)),
                    jax.tree.leaves((plain.params, plain.batch_stats))):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    for m1, m2 in zip(h_fused, h_plain):
        for k in m1:
            np.testing.assert_allclose(m1[k], m2[k], rtol=1e-9, atol=1e-10, err_msg=k)


def test_learning_rate_decays_per_epoch_or_per_steps():
    config = tiny_config()
    per_epoch = learning_rate_schedule(config, steps_per_epoch=10)
    assert float(per_epoch(9)) == pytest.approx(0.2)
    assert float(per_epoch(10)) == pytest.approx(0.14)
    assert float(per_epoch(25)) == pytest.approx(0.2 * 0.7 ** 2)
    config.optim.decay_every_steps = 150
    per_steps = learning_rate_schedule(config, steps_per_epoch=10)
    assert float(per_steps(149)) == pytest.approx(0.2)
    assert float(per_steps(150)) == pytest.approx(0.14)


def test_weight_decay_is_coupled_l2():
    """One SGD step with zero gradient shrinks params by lr * wd, like torch's SGD."""
    import jax.numpy as jnp

    config = tiny_config()
    tx = make_optimizer(config, steps_per_epoch=1)
    params = {"w": jnp.ones(3)}
    updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.2 * 4e-5 * np.ones(3), rtol=1e-6)


def test_warmup_rises_linearly_then_follows_the_decay():
    config = tiny_config()
    config.optim.decay_every_steps = 150
    config.optim.warmup_steps = 10
    lr = learning_rate_schedule(config, steps_per_epoch=10)
    assert float(lr(0)) == pytest.approx(0.02)
    assert float(lr(4)) == pytest.approx(0.1)
    assert float(lr(9)) == pytest.approx(0.2)
    assert float(lr(149)) == pytest.approx(0.2)
    assert float(lr(150)) == pytest.approx(0.14)


def test_domain_weight_decay_applies_to_domain_groups_only():
    """A zero-gradient SGD step: domain* groups shrink by lr * domain_weight_decay, the rest by
    lr * weight_decay."""
    import jax.numpy as jnp

    config = tiny_config()
    config.optim.domain_weight_decay = 1e-2
    tx = make_optimizer(config, steps_per_epoch=1)
    params = {"domain": {"w": jnp.ones(3)}, "domain_head": {"b": jnp.ones(2)},
              "emotion": {"w": jnp.ones(3)}, "centers": {"c": jnp.ones(2)}}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    for group, wd in (("domain", 1e-2), ("domain_head", 1e-2), ("emotion", 4e-5), ("centers", 4e-5)):
        for leaf in jax.tree.leaves(updates[group]):
            np.testing.assert_allclose(leaf, -0.2 * wd * np.ones_like(leaf), rtol=1e-6, err_msg=group)


def test_weight_average_is_the_debiased_moving_average_of_the_iterates():
    """optim.ema_decay: after t SGD steps the evaluated params are sum_i d^(t-i) p_i / sum_i
    d^(t-i) over the iterates p_1..p_t (numpy, by hand); the trained params are untouched."""
    import jax.numpy as jnp

    config = tiny_config()
    config.optim.weight_decay = 0.0
    config.optim.ema_decay = 0.5
    tx = make_optimizer(config, steps_per_epoch=100)
    params = {"w": jnp.array([1.0, -2.0])}
    state = create_train_state({"params": params}, tx, 4)
    assert np.array_equal(state.eval_variables["params"]["w"], params["w"])  # before any step
    grads = [np.array([1.0, 0.0]), np.array([0.5, 2.0]), np.array([-1.0, 1.0])]
    iterates, p = [], np.array([1.0, -2.0])
    for g in grads:
        updates, opt_state = tx.update({"w": jnp.asarray(g)}, state.opt_state, state.params)
        state = state.replace(params={"w": state.params["w"] + updates["w"]}, opt_state=opt_state)
        p = p - 0.2 * g
        iterates.append(p)
    np.testing.assert_allclose(state.params["w"], iterates[-1], rtol=1e-6)
    w = 0.5 ** np.arange(len(iterates))[::-1]
    expected = (w[:, None] * np.array(iterates)).sum(0) / w.sum()
    np.testing.assert_allclose(state.eval_variables["params"]["w"], expected, rtol=1e-6)
    config.optim.ema_decay = 0.0  # off: evaluation sees the weights themselves
    tx = make_optimizer(config, steps_per_epoch=100)
    plain = create_train_state({"params": params}, tx, 4)
    assert plain.eval_variables["params"] is plain.params


def test_batch_size_not_divisible_by_devices_is_refused_with_advice():
    with pytest.raises(ValueError, match="multiple of 8"):
        sharding.check_batch_size(12, sharding.make_mesh(8))
