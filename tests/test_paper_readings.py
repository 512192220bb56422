"""The readings of Table 1 offered as config values: kernel shapes as (frequency, time) pairs,
the channel-wise FC's initialisation, which config takes which reading, and the `fidelity`
grid that measures them. Sizes only (jax.eval_shape): nothing here trains."""

from __future__ import annotations

import json
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.config import base_config, config_from_json, input_shape, load_config, to_json
from adarl_jax.model import build_model, param_counts
from adarl_jax.model.layers import ChannelwiseDense, MultiScaleConvBlock
from adarl_jax.experiments.tune import candidate_configs, load_grid

KEY = jax.random.key(0, impl="rbg")


def small(config):
    """The config shrunk to a 40 x 30 input (F_4 8 x 6 x 12), for forward passes."""
    config.frontend.n_bins, config.frontend.n_frames, config.data.segment_s = 40, 30, 0.3
    config.model.block_features = ((4, 4), (4, 4), (4, 4), (6, 6))
    config.model.block_pools = ((5, 5), (1, 1), (1, 1), (1, 1))
    return config


def shapes(config):
    """{'params', 'batch_stats'} as ShapeDtypeStructs, without computing anything."""
    model = build_model(config)
    x = jax.ShapeDtypeStruct((1, *input_shape(config)), jnp.float32)
    return jax.eval_shape(lambda x: model.init(KEY, x, train=False), x)


def conv_shapes(params) -> dict:
    """{'emotion/block1/conv3x5': kernel shape, ...} over both pathways."""
    out = {}
    for pathway in ("domain", "emotion"):
        for block, convs in params[pathway]["convs"].items():
            out.update({f"{pathway}/{block}/{n}": tuple(c["kernel"].shape)
                        for n, c in convs.items() if n.startswith("conv")})
    return out


# ---------------------------------------------------------------------------------------------
# Kernel shapes


def test_saved_config_with_int_kernels_builds_the_identical_model():
    """A run saved before kernels were pairs holds `"kernel_sizes": [3, 5]` and neither of the
    new fields; it loads as square 3x3 and 5x5 convs under their old names and the joint CFC
    init it was trained with, and computes what the same weights compute under the explicit
    pairs."""
    old = small(base_config())
    saved = json.loads(to_json(old))
    saved["model"]["kernel_sizes"] = [3, 5]
    del saved["model"]["channelwise_init"], saved["frontend"]["third_channel"]
    loaded = config_from_json(json.dumps(saved))
    assert loaded.model.channelwise_init == "joint"  # what the run was trained with
    assert config_from_json(to_json(old)).model.channelwise_init == "per_channel"
    explicit = small(base_config())
    explicit.model.kernel_sizes = ((3, 3), (5, 5))
    got = conv_shapes(shapes(loaded)["params"])
    assert got == conv_shapes(shapes(explicit)["params"])
    assert got["emotion/block1/conv3x3"] == (3, 3, 3, 4)
    assert got["domain/block4/conv5x5"] == (5, 5, 8, 6)
    variables = build_model(explicit).init(KEY, jnp.zeros((1, *input_shape(explicit))), train=False)
    x = jax.random.normal(jax.random.key(1), (2, *input_shape(explicit)))
    a = build_model(loaded).apply(variables, x)
    b = build_model(explicit).apply(variables, x)
    for k in b:
        np.testing.assert_array_equal(a[k], b[k])
    # ... and the default (Table 1's rectangular reading) is another tree.
    assert "emotion/block1/conv3x5" in conv_shapes(shapes(small(base_config()))["params"])


def test_kernel_pairs_are_frequency_then_time():
    """(1, k) kernels mix frames of one frequency row only: an input constant in time stays
    constant in time (away from the 'same' padding), and rows stay distinct."""
    block = MultiScaleConvBlock((4, 4), ((1, 3), (1, 5)), pool=(1, 1))
    rows = jax.random.normal(jax.random.key(2), (2, 40, 1, 3))
    x = jnp.broadcast_to(rows, (2, 40, 30, 3))  # (batch, freq, time, channels)
    variables = block.init(KEY, x, train=False)
    assert variables["params"]["conv1x5"]["kernel"].shape == (1, 5, 3, 4)
    y = np.asarray(block.apply(variables, x, train=False))
    assert np.ptp(y[:, :, 2:-2], axis=2).max() < 1e-5  # 5-frame kernel: 2 frames each side
    assert np.ptp(y[:, :, 2:-2], axis=1).max() > 1e-2


@pytest.mark.parametrize("kernel_sizes, match", [
    (((3, 3), (3, 3)), "twice"), (((3, 3), (3, 5, 7)), "neither"), (((3, 0), (3, 5)), "below 1"),
    ((3.0, 5), "neither")])
def test_bad_kernel_sizes_name_the_field(kernel_sizes, match):
    config = base_config()
    config.model.kernel_sizes = kernel_sizes
    with pytest.raises(ValueError, match=re.escape("model.kernel_sizes") + ".*" + match):
        build_model(config)


def test_kernel_pairs_through_an_override():
    config = load_config("smoke", ["model.kernel_sizes=((3, 3), (5, 5))"])
    assert "emotion/block1/conv5x5" in conv_shapes(shapes(config)["params"])
    config = load_config("smoke", ["model.kernel_sizes=(3, 5)"])  # ints still mean squares
    assert "emotion/block1/conv5x5" in conv_shapes(shapes(config)["params"])


# ---------------------------------------------------------------------------------------------
# The channel-wise FC's initialisation


class OldChannelwiseDense(nn.Module):
    """ChannelwiseDense as it was before `init` existed: one Xavier (8, 64) kernel."""

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.xavier_uniform(), x.shape[-2:])
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return jnp.einsum("bhc,hc->bc", x, kernel) + bias


def cfc_kernels(module, n_keys):
    x = jnp.zeros((1, 8, 64))
    init = jax.jit(jax.vmap(lambda k: module.init(k, x)["params"]["kernel"]))
    return np.asarray(init(jax.random.split(jax.random.key(3), n_keys)), np.float64)


def xavier_uniform_variance(fan_in, fan_out):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)): variance a^2 / 3."""
    return 2.0 / (fan_in + fan_out)


@pytest.mark.parametrize("init, fan_out", [("per_channel", 1), ("joint", 64)])
def test_channelwise_init_scale(init, fan_out):
    """per_channel: 64 FC(8, 1) layers' Xavier (fan-out 1); joint: one FC(8, 64)'s."""
    w = cfc_kernels(ChannelwiseDense(weight_init=init), 200)  # 102,400 weights
    want = xavier_uniform_variance(8, fan_out)
    assert abs(w.var() / want - 1) < 0.02  # relative standard error of the estimate ~0.3%
    bound = np.sqrt(3 * want)
    assert 0.99 * bound < np.abs(w).max() <= bound * (1 + 1e-6)  # float32 rounding of the bound
    # every channel is drawn on the same scale: no channel is a layer with another fan-out
    per_channel_var = w.var(axis=(0, 1))
    assert per_channel_var.min() > 0.8 * want and per_channel_var.max() < 1.2 * want


def test_joint_init_is_the_old_kernel_bit_for_bit():
    x = jnp.zeros((1, 8, 64))
    for seed in range(3):
        key = jax.random.key(seed, impl="rbg")
        old = OldChannelwiseDense().init(key, x)["params"]
        new = ChannelwiseDense(weight_init="joint").init(key, x)["params"]
        np.testing.assert_array_equal(new["kernel"], old["kernel"])
        np.testing.assert_array_equal(new["bias"], old["bias"])
    with pytest.raises(ValueError, match="model.channelwise_init"):
        ChannelwiseDense(weight_init="xavier").init(KEY, x)


# ---------------------------------------------------------------------------------------------
# Which config takes which reading


PAPER_READING = (((3, 3), (3, 5)), "per_channel")
MEASURED_RECIPE = (((3, 3), (5, 5)), "joint")


@pytest.mark.parametrize("name, reading, total", [
    ("paper", PAPER_READING, 303_954), ("emodb", PAPER_READING, 303_954),
    ("quick", MEASURED_RECIPE, 345_874), ("quick_sgd", MEASURED_RECIPE, 345_874),
    ("quick_paper", MEASURED_RECIPE, 345_874), ("emodb_fast", MEASURED_RECIPE, 345_874),
    ("full", MEASURED_RECIPE, 345_874)])
def test_each_config_takes_its_reading(name, reading, total):
    """The paper's configs take base_config's reading; the measured recipe and the configs
    derived from it keep its network, so their recorded results still describe them."""
    config = load_config(name)
    assert (tuple(map(tuple, config.model.kernel_sizes)), config.model.channelwise_init) == reading
    assert param_counts(shapes(config)["params"])["total"] == total


# ---------------------------------------------------------------------------------------------
# The fidelity grid


def test_fidelity_grid_loads_and_every_candidate_builds():
    grid = load_grid("fidelity")
    assert grid["config"] == "quick"
    configs = candidate_configs(grid)
    assert list(configs) == ["quick", "per_channel_init", "rect_kernels", "two_windows_mean"]
    quick = load_config("quick")
    changed = {}
    for name, config in configs.items():
        assert input_shape(config) == (80, 60, 3)
        tree = shapes(config)
        changed[name] = sorted(
            f"{s}.{k}" for s in ("model", "frontend") for k in config[s]
            if config[s][k] != quick[s][k])
        counts = param_counts(tree["params"])["total"]
        assert counts == (303_954 if name == "rect_kernels" else 345_874), name
    assert changed == {"quick": [], "per_channel_init": ["model.channelwise_init"],
                       "rect_kernels": ["model.kernel_sizes"],
                       "two_windows_mean": ["frontend.third_channel", "frontend.windows_s"]}
