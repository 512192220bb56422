"""optim.domain_pretrain_steps: the domain pathway trained alone first, on the domain loss,
then frozen (or slowed) while the rest trains its usual schedule; checked against the cosine
formula written out, hand-applied SGD updates and the loss terms the step reports."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.config import input_shape
from adarl_jax.train.optim import (domain_learning_rate_schedule, domain_loss_only,
                                   learning_rate_schedule, make_optimizer, num_epochs)
from adarl_jax.train.train_step import create_train_state_from_config, make_train_step
from conftest import tiny_config


def pretrain_config(first=20, steps=30, scale=0.0, optimizer="adamw"):
    config = tiny_config("adarl")
    config.optim.optimizer = optimizer
    config.optim.schedule = "cosine"
    config.optim.lr = 0.01
    config.optim.train_steps = steps
    config.optim.domain_pretrain_steps = first
    config.optim.domain_lr_scale = scale
    return config


def cosine(lr, k, total):
    return lr * 0.5 * (1 + math.cos(math.pi * min(k, total) / total))


def test_the_pretraining_adds_its_steps_and_each_group_has_its_own_schedule():
    config = pretrain_config(first=20, steps=30, scale=0.25)
    spe = 10
    assert num_epochs(config, spe) == 5  # 30 steps + 20 steps
    rest = learning_rate_schedule(config, spe)
    domain = domain_learning_rate_schedule(config, spe)
    for k in range(50):
        want_rest = 0.0 if k < 20 else cosine(0.01, k - 20, 30)
        want_domain = cosine(0.01, k, 20) if k < 20 else 0.25 * want_rest
        assert float(rest(k)) == pytest.approx(want_rest, rel=1e-5, abs=1e-9), k
        assert float(domain(k)) == pytest.approx(want_domain, rel=1e-5, abs=1e-9), k
    assert [bool(domain_loss_only(config)(k)) for k in (0, 19, 20, 49)] == [True, True, False, False]
    config.optim.domain_pretrain_steps = 0
    assert domain_loss_only(config) is None
    assert num_epochs(config, spe) == 3


def test_sgd_updates_only_the_domain_groups_first_then_the_rest_with_the_domain_slowed():
    """Plain SGD without decay: each update is -lr(step) * gradient, per group."""
    config = pretrain_config(first=3, steps=4, scale=0.5, optimizer="sgd")
    config.optim.weight_decay = 0.0
    params = {"domain_pathway": {"w": jnp.ones(3)}, "domain_head": {"b": jnp.ones(2)},
              "emotion": {"w": jnp.ones(4)}, "centers": {"c": jnp.ones(2)}}
    tx = make_optimizer(config, 1)
    state = tx.init(params)
    rest, domain = learning_rate_schedule(config, 1), domain_learning_rate_schedule(config, 1)
    rng = np.random.default_rng(0)
    for step in range(7):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        updates, state = tx.update(grads, state, params)
        for group, tree in updates.items():
            lr = domain(step) if group.startswith("domain") else rest(step)
            for got, g in zip(jax.tree.leaves(tree), jax.tree.leaves(grads[group])):
                np.testing.assert_allclose(got, -float(lr) * g, rtol=1e-6, atol=1e-12)
            moved = bool(jnp.any(jax.tree.leaves(tree)[0] != 0))
            assert moved == (group.startswith("domain") if step < 3 else True), (step, group)


def test_adamw_freezes_the_domain_pathway_after_its_pretraining():
    config = pretrain_config(first=2, steps=3, scale=0.0)
    params = {"domain_pathway": {"w": jnp.ones(3)}, "emotion": {"w": jnp.ones(4)}}
    tx = make_optimizer(config, 1)
    state = tx.init(params)
    for step in range(5):
        grads = jax.tree.map(jnp.ones_like, params)
        updates, state = tx.update(grads, state, params)
        domain_moved = bool(jnp.any(updates["domain_pathway"]["w"] != 0))
        emotion_moved = bool(jnp.any(updates["emotion"]["w"] != 0))
        assert (domain_moved, emotion_moved) == ((True, False) if step < 2 else (False, True)), step


def test_the_step_weighs_only_the_domain_loss_while_pretraining():
    config = pretrain_config(first=1, steps=2)
    model, state, tx = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 1)
    weights = (1.0, 1.0, 0.5)
    step = jax.jit(make_train_step(model, tx, weights, learning_rate_schedule(config, 1),
                                   domain_loss_only=domain_loss_only(config)))
    rng = np.random.default_rng(0)
    n = 8
    batch = {"x": rng.normal(size=(n, *input_shape(config))).astype(np.float32),
             "emotion": rng.integers(0, 4, n).astype(np.int32),
             "domain": rng.integers(0, 2, n).astype(np.int32),
             "weight": np.ones(n, np.float32)}
    emotion_before = jax.device_get(state.params["emotion"])
    state, m = step(state, batch)
    assert float(m["loss"]) == pytest.approx(float(m["loss_domain"]), rel=1e-6)
    assert float(m["loss_emotion"]) > 0  # reported, though it weighs 0
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.params["emotion"]),
                 emotion_before)  # the emotion pathway did not move
    state, m = step(state, batch)
    want = float(m["loss_domain"]) + float(m["loss_emotion"]) + 0.5 * float(m["loss_center"])
    assert float(m["loss"]) == pytest.approx(want, rel=1e-6)


def test_a_model_without_a_domain_pathway_is_refused():
    config = pretrain_config()
    config.model.variant = "backbone"
    with pytest.raises(ValueError, match="domain_pretrain_steps > 0 needs a variant with a domain pathway"):
        create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 1)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_after_the_pretraining_the_rest_trains_as_a_fresh_optimizer_would(optimizer):
    """The rest's optimiser is not stepped while the domain pathway pretrains: from then on its
    updates (Adam's moments and bias correction, SGD's momentum) equal those of an optimiser
    without pretraining fed the same gradients."""
    config = pretrain_config(first=5, steps=6, optimizer=optimizer)
    config.optim.momentum = 0.9
    fresh_config = pretrain_config(first=0, steps=6, optimizer=optimizer)
    fresh_config.optim.momentum = 0.9
    params = {"domain_pathway": {"w": jnp.ones(3)}, "emotion": {"w": jnp.linspace(-1, 1, 4)}}
    rng = np.random.default_rng(1)
    tx, fresh = make_optimizer(config, 1), make_optimizer(fresh_config, 1)
    state, fresh_state = tx.init(params), fresh.init({"emotion": params["emotion"]})
    for _ in range(5):  # the pretraining: emotion gradients arrive (e.g. reversed ones) and are ignored
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        _, state = tx.update(grads, state, params)
    for step in range(6):
        g = jnp.asarray(rng.normal(size=4), jnp.float32)
        grads = {"domain_pathway": {"w": jnp.zeros(3)}, "emotion": {"w": g}}
        updates, state = tx.update(grads, state, params)
        want, fresh_state = fresh.update({"emotion": {"w": g}}, fresh_state, {"emotion": params["emotion"]})
        np.testing.assert_allclose(updates["emotion"]["w"], want["emotion"]["w"], rtol=1e-5,
                                   atol=1e-9, err_msg=f"step {step}")


def test_settings_that_cannot_pretrain_a_domain_pathway_are_refused_early():
    from adarl_jax.config import validate

    for field, value, message in (("model.variant", "adarl_no_domain_loss", "trains no domain head"),
                                  ("loss.domain_weight", 0.0, "gives it no loss"),
                                  ("optim.domain_lr_scale", -1.0, "is negative"),
                                  ("optim.ema_decay", 0.9, "ema_decay")):
        config = pretrain_config()
        section, key = field.split(".")
        config[section][key] = value
        with pytest.raises(ValueError, match=message):
            validate(config)
    validate(pretrain_config())
