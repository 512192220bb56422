"""oracle_gate: the frequency gate picked by the true domain label. Its gate against a hand
computation, a synthetic problem that only a domain-aware gate can solve, the label input
through the test-statistics modes, and predict's refusal."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from adarl_jax.data.functionals import DOMAIN_SET, domain_onehot, functionals_dim
from adarl_jax.model import build_model, init_variables
from adarl_jax.model.pathways import EmotionPathway
from adarl_jax.model.registry import with_declared_settings
from adarl_jax.model.spec import ModelSpec
from conftest import tiny_config, tiny_input_shape


def _oracle():
    config = tiny_config("oracle_gate")
    with_declared_settings(config)
    return config, build_model(config)


def test_domain_onehot():
    np.testing.assert_array_equal(domain_onehot(np.array([1, -1, 0]), 2),
                                  [[0, 1], [0, 0], [1, 0]])


def test_the_gate_is_the_learnt_vector_of_each_samples_domain():
    config, model = _oracle()
    assert config.model.functionals == DOMAIN_SET and functionals_dim(config) == 2
    v = init_variables(model, tiny_input_shape(), jax.random.key(0), functionals_dim(config))
    p = np.random.default_rng(0).normal(size=v["params"]["gate"]["gate_logits"].shape).astype(np.float32)
    v = {**v, "params": {**v["params"], "gate": {"gate_logits": jnp.asarray(p)}}}
    x = jax.random.normal(jax.random.key(1), (3, *tiny_input_shape()))
    onehot = domain_onehot(np.array([0, 1, -1]), 2)
    out = model.apply(v, x, False, functionals=jnp.asarray(onehot))
    gate = 1 / (1 + np.exp(-10.0 * p))  # sigmoid(gate_scale * p), gate_scale's default 10
    np.testing.assert_allclose(out["attention"], [gate[0], gate[1], np.full(p.shape[1], 0.5)],
                               rtol=1e-5)
    # the emotion pathway run by hand with that gate gives the same logits
    spec = ModelSpec.from_config(config)
    emotion = {"params": v["params"]["emotion"], "batch_stats": v["batch_stats"]["emotion"]}
    _, _, logits = EmotionPathway(spec).apply(emotion, x, False, out["attention"])
    np.testing.assert_allclose(out["emotion_logits"], logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="domain one-hot"):
        model.apply(v, x, False)


def _synthetic(rng, n):
    """Class 1 lights the low half of the frequency axis in domain 0, the high half in domain 1;
    class 0 lights the other half. Without the domain the two classes look alike."""
    f, t, c = tiny_input_shape()
    domain = rng.integers(0, 2, n)
    label = rng.integers(0, 2, n)
    low = (label == 1) == (domain == 0)  # which half is lit
    x = rng.normal(0, 0.3, (n, f, t, c)).astype(np.float32)
    x[low, : f // 2] += 2.0
    x[~low, f // 2:] += 2.0
    return x, domain, label


def _fit_and_score(model, config, domain_inputs, steps=40):
    """Test accuracy on the synthetic problem after `steps` Adam steps, once per domain input
    (a function of the domain labels); one jitted step serves them all."""
    opt = optax.adam(1e-2)

    @jax.jit
    def step(params, batch_stats, opt_state, x, g, y):
        def loss(params):
            out, new = model.apply({"params": params, "batch_stats": batch_stats}, x, True,
                                   functionals=g, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(out["emotion_logits"], y).mean(), new
        (_, new), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), new["batch_stats"], opt_state

    predict = jax.jit(lambda v, x, g: model.apply(v, x, False, functionals=g)["emotion_logits"])
    v = init_variables(model, tiny_input_shape(), jax.random.key(0), functionals_dim(config))
    scores = []
    for domain_input in domain_inputs:
        rng = np.random.default_rng(0)
        params, stats, state = v["params"], v["batch_stats"], opt.init(v["params"])
        for _ in range(steps):
            x, d, y = _synthetic(rng, 32)
            params, stats, state = step(params, stats, state, x, domain_input(d), y)
        x, d, y = _synthetic(np.random.default_rng(1), 400)
        logits = predict({"params": params, "batch_stats": stats}, x, domain_input(d))
        scores.append(float(np.mean(np.argmax(logits, -1) == y)))
    return scores


def test_a_domain_dependent_cue_is_learnt_with_the_true_domain_and_not_without():
    config, model = _oracle()
    oracle, blind = _fit_and_score(model, config, [
        lambda d: jnp.asarray(domain_onehot(d, 2)),
        lambda d: jnp.zeros((len(d), 2), jnp.float32)])  # the same model with no domain
    assert oracle > 0.9, oracle
    assert blind < 0.7, blind  # without it the two classes look alike


def test_labels_pass_every_test_statistics_mode_unstandardised():
    from types import SimpleNamespace

    from adarl_jax.train.test_statistics import _TestFunctionals

    raw = domain_onehot(np.array([0, 0, 1, 1]), 2)
    dataset = SimpleNamespace(functionals_raw=raw, functionals_set=DOMAIN_SET)
    fold = SimpleNamespace(train=[0, 2])
    seg_utt = np.array([1, 1, 3])
    f = _TestFunctionals(dataset, fold, seg_utt)
    for got in (f.own(), f.pooled(), f.train_standardised(),
                f.enrolled(np.array(["a", "a", "b"]), {1})):
        np.testing.assert_array_equal(got, raw[seg_utt])
    dataset.functionals_set = "egemaps"  # an openSMILE set is standardised: each utterance alone -> 0
    np.testing.assert_array_equal(_TestFunctionals(dataset, fold, seg_utt).own(), 0.0)


def test_an_oracle_fold_trains_through_the_cli_and_predict_refuses_it(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO, cli_env, train_workdir

    w = train_workdir(tmp_path, folds="0", extra=["--variant", "oracle_gate"])
    result = json.loads(next((w / "oracle_gate").glob("fold_00_*/result.json")).read_text())
    assert result["test"]["n"] > 0 and result["variant"] == "oracle_gate"
    wav = result["utterances"][0]["path"]
    p = subprocess.run([sys.executable, "-m", "adarl_jax.cli", "predict", "--checkpoint", str(w),
                        wav], cwd=REPO, env=cli_env(tmp_path), capture_output=True, text=True)
    assert p.returncode == 2 and "true domain label" in p.stderr, p.stderr


def test_analyze_replaces_the_oracles_gate_and_refuses_a_model_without_one():
    from adarl_jax.report.attention import REPLACEMENT, AttentionReplaced

    config, model = _oracle()
    v = init_variables(model, tiny_input_shape(), jax.random.key(0), functionals_dim(config))
    x = jax.random.normal(jax.random.key(1), (2, *tiny_input_shape()))
    onehot = jnp.asarray(domain_onehot(np.array([0, 1]), 2))
    gate = jnp.linspace(0.1, 0.9, v["params"]["gate"]["gate_logits"].shape[1])
    got = AttentionReplaced(model).apply({**v, REPLACEMENT: gate}, x, functionals=onehot)
    emotion = {"params": v["params"]["emotion"], "batch_stats": v["batch_stats"]["emotion"]}
    _, _, logits = EmotionPathway(ModelSpec.from_config(config)).apply(
        emotion, x, False, jnp.broadcast_to(gate, (2, gate.shape[0])))
    np.testing.assert_allclose(got["emotion_logits"], logits, rtol=1e-5, atol=1e-6)
    backbone = build_model(tiny_config("backbone"))
    vb = init_variables(backbone, tiny_input_shape(), jax.random.key(0))
    with pytest.raises(ValueError, match="no attention module to replace"):
        AttentionReplaced(backbone).apply({**vb, REPLACEMENT: gate}, x)
