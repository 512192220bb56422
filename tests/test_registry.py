"""The variant registry: a fork adds a model with one decorated class and one config string."""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.config import input_shape
from adarl_jax.model import build_model, get_variant, register_variant, variant_names
from adarl_jax.model.layers import ChannelwiseDense, ConvPathway, FeatureHead
from adarl_jax.model.pathways import ClassCenters, outputs
from adarl_jax.model.spec import ModelSpec
from adarl_jax.train.optim import learning_rate_schedule
from adarl_jax.train.train_step import create_train_state_from_config, make_train_step
from conftest import tiny_config

TOY = "toy_squeeze_excite"


@register_variant(TOY, uses_domain=False)
class ToySqueezeExcite(nn.Module):
    """The emotion pathway with squeeze-and-excitation channel gating on F_4 (no domain)."""

    spec: ModelSpec

    @nn.compact
    def __call__(self, x, train: bool = False):
        f4 = ConvPathway(**self.spec.pathway_kwargs(), name="convs")(x, train)
        squeeze = f4.mean(axis=(1, 2))  # (B, C)
        gate = nn.sigmoid(nn.Dense(f4.shape[-1], name="excite")(
            nn.relu(nn.Dense(max(f4.shape[-1] // 4, 1), name="squeeze")(squeeze))))
        f4 = f4 * gate[:, None, None, :]
        cfc = ChannelwiseDense(name="cfc")(f4.mean(axis=2))
        feature, logits = FeatureHead(self.spec.hidden, self.spec.num_classes,
                                      self.spec.bn_momentum, name="head")(cfc, train)
        centers = ClassCenters(self.spec.num_classes, self.spec.hidden, name="centers")()
        return outputs(logits, feature, centers)


def tiny_batch(config, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": jnp.asarray(rng.normal(size=(batch, *input_shape(config))), jnp.float32),
        "emotion": jnp.asarray([0, 1, 2, -1][:batch], jnp.int32),
        "domain": jnp.asarray([0, 1, 1, 0][:batch], jnp.int32),
        "weight": jnp.asarray([1.0, 1.0, 1.0, 0.0][:batch], jnp.float32),
    }


def test_paper_variants_are_registered():
    names = variant_names()
    assert {"backbone", "domain_invariant", "adarl"} <= set(names)
    assert names == sorted(names)
    assert get_variant("backbone").uses_domain is False
    assert get_variant("domain_invariant").uses_domain is True
    assert get_variant("adarl").uses_domain is True


def test_unknown_variant_lists_the_known_names():
    config = tiny_config("no_such_variant")
    with pytest.raises(KeyError) as err:
        build_model(config)
    message = str(err.value)
    assert "no_such_variant" in message
    for name in ("adarl", "backbone", "domain_invariant", TOY):
        assert name in message


def test_registering_another_class_under_a_taken_name_raises():
    class Impostor(nn.Module):
        spec: ModelSpec

    for name in ("backbone", TOY):
        before = get_variant(name)
        with pytest.raises(ValueError, match=name):
            register_variant(name, uses_domain=False)(Impostor)
        assert get_variant(name) is before  # the registry is left as it was


def test_re_registering_the_same_class_is_allowed():
    """A module imported twice (e.g. by two test runners) must not break the registry."""
    info = get_variant(TOY)
    register_variant(TOY, uses_domain=False)(ToySqueezeExcite)
    assert get_variant(TOY).module is ToySqueezeExcite and info.uses_domain is False


def test_toy_variant_builds_from_config_and_trains_one_step():
    config = tiny_config(TOY)
    assert TOY in variant_names()
    assert get_variant(TOY).uses_domain is False
    model, state, tx = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 3)
    assert isinstance(model, ToySqueezeExcite)
    assert model.spec == ModelSpec.from_config(config)
    assert {"convs", "squeeze", "excite", "cfc", "head", "centers"} == set(state.params)
    loss_weights = (config.loss.domain_weight, config.loss.emotion_weight, config.loss.center_weight)
    step = jax.jit(make_train_step(model, tx, loss_weights, learning_rate_schedule(config, 3)))

    new_state, metrics = step(state, tiny_batch(config))
    metrics = jax.device_get(metrics)
    assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0
    assert "loss_domain" not in metrics  # no domain head: L^D is not part of Eq. 9 here
    np.testing.assert_allclose(
        metrics["loss"], config.loss.emotion_weight * metrics["loss_emotion"]
        + config.loss.center_weight * metrics["loss_center"], rtol=1e-5)
    assert metrics["n_emotion"] == 3  # the -1 label and the padded sample do not count
    np.testing.assert_allclose(metrics["lr"], config.optim.lr)
    assert int(new_state.step) == 1

    def changed(a, b):
        return jax.tree.map(lambda x, y: bool(np.any(np.asarray(x) != np.asarray(y))), a, b)

    # The loss gradient reached every part of the toy, beyond the coupled weight decay alone,
    # except the conv biases: a train-mode BatchNorm right after the conv cancels any constant
    # shift, so their gradient is zero (why model.conv_bias=False loses nothing).
    lr, wd = config.optim.lr, config.optim.weight_decay
    decay_only = jax.tree.map(lambda p: p - lr * wd * p, state.params)
    for path, diff in jax.tree_util.tree_flatten_with_path(
            jax.tree.map(lambda a, b: float(np.abs(np.asarray(a - b)).max()),
                         new_state.params, decay_only))[0]:
        name = jax.tree_util.keystr(path)
        if re.search(r"\['conv\dx\d'\]\['bias'\]$", name):
            assert diff < 1e-6, name
        else:
            assert diff > 1e-6, name
    moved = changed(state.params, new_state.params)
    assert all(jax.tree.leaves(moved["excite"])) and all(jax.tree.leaves(moved["squeeze"]))
    assert all(jax.tree.leaves(moved["head"]["fc2"])) and all(jax.tree.leaves(moved["centers"]))
    assert all(jax.tree.leaves(changed(state.batch_stats, new_state.batch_stats)))
    for leaf in jax.tree.leaves(new_state.params):
        assert np.all(np.isfinite(np.asarray(leaf)))

    # A second step from the new state keeps going.
    _, metrics2 = step(new_state, tiny_batch(config, seed=1))
    assert np.isfinite(float(metrics2["loss"]))


def test_the_lambda1_zero_control_equals_adarl_trained_without_the_domain_loss():
    """Same parameters, same batch: the control's gradient is adarl's with domain_weight 0."""
    from adarl_jax.train import losses

    config = tiny_config("adarl")
    adarl, state, _ = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 1)
    control, variables = build_model(tiny_config("adarl_no_domain_loss")), state.variables
    batch = tiny_batch(config, 4)

    def grads(model, weights):
        def loss(params):
            out, _ = model.apply({**variables, "params": params}, batch["x"], train=True,
                                 mutable=["batch_stats"])
            return losses.total_loss(out, batch, weights)[0]
        return jax.grad(loss)(variables["params"])

    want = grads(adarl, (0.0, 1.0, 0.5))
    got = grads(control, (1.0, 1.0, 0.5))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got, want)
    full = grads(adarl, (1.0, 1.0, 0.5))  # the domain loss does move adarl's domain pathway
    moved = jax.tree.map(lambda a, b: not np.allclose(a, b), full["domain"], got["domain"])
    assert any(jax.tree.leaves(moved))
    assert get_variant("adarl_no_domain_loss").uses_domain is False
