"""The pieces variants compose: every registered variant initialises and runs, `EmotionHead`
computes TP -> CFC -> feature head in its caller's scope, and `domain_invariant` is the
backbone plus a gradient-reversed gender head."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config


def _init(config, seed=0):
    from adarl_jax.config import input_shape
    from adarl_jax.data.functionals import functionals_dim
    from adarl_jax.model import build_model, init_variables

    model = build_model(config)
    return model, init_variables(model, input_shape(config), jax.random.key(seed, impl="rbg"),
                                 functionals_dim(config))


def _inputs(config, model, n=3, seed=2):
    """{'functionals': (n, d)} for a variant that reads them, else {}."""
    from adarl_jax.data.functionals import functionals_dim
    from adarl_jax.model import reads_functionals

    if not reads_functionals(model):
        return {}
    d = functionals_dim(config)
    return {"functionals": jnp.asarray(np.random.default_rng(seed).normal(size=(n, d)), jnp.float32)}


def _x(config, n=3, seed=1):
    from adarl_jax.config import input_shape

    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, *input_shape(config))),
                       jnp.float32)


def _variants():
    from adarl_jax.model import variant_names

    return variant_names()


@pytest.mark.parametrize("variant", _variants())
def test_every_registered_variant_initialises_trains_and_predicts(variant):
    from adarl_jax.model import get_variant

    config = tiny_config(variant)
    model, variables = _init(config)
    x = _x(config)
    inputs = _inputs(config, model)
    out, updates = model.apply(variables, x, train=True, mutable=["batch_stats"], **inputs)
    k, hidden = len(config.data.classes), int(config.model.hidden)
    assert out["emotion_logits"].shape == (3, k)
    assert out["deep_feature"].shape == (3, hidden)
    assert out["centers"].shape == (k, hidden)
    if get_variant(variant).uses_domain:
        assert out["domain_logits"].shape == (3, len(config.data.genders))
    assert jax.tree.structure(updates["batch_stats"]) == jax.tree.structure(variables["batch_stats"])
    evaluated = model.apply(variables, x, train=False, **inputs)
    assert all(np.isfinite(np.asarray(v)).all() for v in evaluated.values())


def _feature_head_reference(p, stats, x, eps=1e-5):
    """FC -> ReLU -> BatchNorm (running statistics) -> FC, in float64 numpy."""
    h = np.maximum(x @ p["fc1"]["kernel"] + p["fc1"]["bias"], 0.0)
    feature = ((h - stats["bn"]["mean"]) / np.sqrt(stats["bn"]["var"] + eps) * p["bn"]["scale"]
               + p["bn"]["bias"])
    return feature, feature @ p["fc2"]["kernel"] + p["fc2"]["bias"]


def test_emotion_head_is_time_pooling_then_channelwise_fc_then_the_feature_head():
    import flax.linen as nn

    from adarl_jax.model import ModelSpec
    from adarl_jax.model.pathways import EmotionHead

    config = tiny_config("backbone")
    spec = ModelSpec.from_config(config)

    class Caller(nn.Module):
        @nn.compact
        def __call__(self, f4, train):
            return EmotionHead(spec)(f4, train)

    f4 = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4, 3, 6)), jnp.float32)
    variables = Caller().init(jax.random.key(0), f4, False)
    # its parameters are the caller's own 'cfc' and 'head': one layout whoever calls it
    assert set(variables["params"]) == {"cfc", "head"}
    stats = jax.tree.map(lambda a: np.asarray(a, np.float64) + 0.3, variables["batch_stats"])
    variables = {"params": variables["params"], "batch_stats": stats}
    feature, logits = Caller().apply(variables, f4, False)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
    pooled = np.asarray(f4, np.float64).mean(axis=2)  # (B, H, C)
    cfc = (pooled * p["cfc"]["kernel"][None]).sum(axis=1) + p["cfc"]["bias"]
    want_feature, want_logits = _feature_head_reference(p["head"], stats["head"], cfc)
    np.testing.assert_allclose(np.asarray(feature), want_feature, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(logits), want_logits, rtol=1e-4, atol=1e-5)


def test_domain_invariant_is_the_backbone_plus_a_reversed_gender_head():
    from adarl_jax.model import build_model

    config = tiny_config("domain_invariant")
    config.model.grl_scale = 0.5
    model, variables = _init(config)
    backbone = build_model(tiny_config("backbone"))
    assert set(variables["params"]) == {"emotion", "centers", "domain_head"}
    shared = {c: {k: v for k, v in tree.items() if k != "domain_head"}
              for c, tree in variables.items()}
    x = _x(config)
    got, want = model.apply(variables, x), backbone.apply(shared, x)
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]))

    # the gender head's gradient reaches the emotion pathway reversed and scaled by grl_scale
    head = variables["params"]["domain_head"]
    head_stats = variables["batch_stats"]["domain_head"]

    def plain_head(params):  # the same head on the backbone's feature, no reversal
        from adarl_jax.model.layers import FeatureHead
        s = model.spec
        feature = backbone.apply({**shared, "params": params}, x)["deep_feature"]
        return FeatureHead(s.hidden, s.num_domains, s.bn_momentum, s.dtype).apply(
            {"params": head, "batch_stats": head_stats}, feature, False)[1].sum()

    def reversed_head(params):
        return model.apply({**variables, "params": {**params, "domain_head": head}},
                           x)["domain_logits"].sum()

    g_rev = jax.grad(reversed_head)(shared["params"])
    g_plain = jax.grad(plain_head)(shared["params"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, -0.5 * b, rtol=1e-5, atol=1e-7),
                 g_rev["emotion"], g_plain["emotion"])


def test_fusion_adds_a_linear_term_of_the_standardised_functionals_to_adarls_logits():
    """adarl_fusion = the adarl network (its own parameters, under 'adarl') + FC(BatchNorm(u)):
    checked against adarl run alone and the head computed in numpy."""
    from adarl_jax.model import build_model

    config = tiny_config("adarl_fusion")
    model, variables = _init(config)
    x = _x(config)
    u = _inputs(config, model, seed=5)["functionals"]
    p, stats = variables["params"]["functionals"], variables["batch_stats"]["functionals"]
    stats = {"bn": {"mean": np.linspace(-1, 1, u.shape[1]), "var": np.linspace(0.5, 2, u.shape[1])}}
    variables = {"params": variables["params"],
                 "batch_stats": {**variables["batch_stats"], "functionals": stats}}
    got = model.apply(variables, x, train=False, functionals=u)["emotion_logits"]
    config.model.variant = "adarl"
    alone = build_model(config).apply({"params": variables["params"]["adarl"],
                                       "batch_stats": variables["batch_stats"]["adarl"]},
                                      x, train=False)["emotion_logits"]
    z = ((np.asarray(u, np.float64) - stats["bn"]["mean"]) / np.sqrt(stats["bn"]["var"] + 1e-5)
         * np.asarray(p["bn"]["scale"]) + np.asarray(p["bn"]["bias"]))
    want = np.asarray(alone, np.float64) + z @ np.asarray(p["fc"]["kernel"]) + np.asarray(p["fc"]["bias"])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="functionals"):
        model.apply(variables, x, train=False)
