"""inference.py: the one inference function, the Predictor built on it, batched inference."""

import jax
import numpy as np
import pytest

from adarl_jax.train import sharding
from adarl_jax.config import input_shape
from adarl_jax.data.frontend import spectrogram
from adarl_jax.train.forward import BatchedInference, make_predict_fn
from adarl_jax.model import build_model, init_variables
from adarl_jax.inference.predict import Predictor
from conftest import tiny_config


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def model(config):
    return build_model(config)


def member_variables(config, model, seed):
    return init_variables(model, input_shape(config), jax.random.key(seed, impl="rbg"))


def spectrograms(config, n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *input_shape(config))).astype(np.float32)


def reference_outputs(model, variables, x):
    """model.apply + softmax of the emotion logits, and the deep feature: written out here."""
    out = model.apply(variables, x, train=False)
    return jax.nn.softmax(out["emotion_logits"], axis=-1), out["deep_feature"]


def numpy_softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- the Predictor's spectrogram path ---------------------------------------------------------


def test_predictor_probabilities_and_features_are_bit_identical_to_apply_and_softmax(config, model):
    p = Predictor(config, member_variables(config, model, 0))
    x = spectrograms(config, 5)
    want_probs, want_feats = jax.jit(lambda v, x: reference_outputs(model, v, x))(p.variables, x)
    np.testing.assert_array_equal(p.probs_of_spectrograms(x), np.asarray(want_probs))
    probs, feats = jax.jit(p._spectrogram_outputs)(p.variables, x)
    np.testing.assert_array_equal(np.asarray(probs), np.asarray(want_probs))
    np.testing.assert_array_equal(np.asarray(feats), np.asarray(want_feats))
    assert probs.dtype == feats.dtype == np.float32


def test_predictor_waveform_path_is_the_front_end_then_the_same_function(config, model):
    p = Predictor(config, member_variables(config, model, 0))
    rng = np.random.default_rng(1)
    waves = (0.1 * rng.normal(size=(3, p.segment_length))).astype(np.float32)
    lengths = np.array([p.segment_length, p.segment_length // 2, 4000], np.int32)
    want = jax.jit(lambda v, w, n: reference_outputs(model, v, spectrogram(w, n, p.spec)))(
        p.variables, waves, lengths)
    got = p._infer_outputs(p.variables, waves, lengths, None)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_ensemble_probabilities_are_the_bit_identical_mean_of_its_members(config, model):
    members = [member_variables(config, model, s) for s in (0, 1)]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *members)
    p = Predictor(config, stacked, n_models=2)
    x = spectrograms(config, 4, seed=2)
    want = jax.jit(lambda vs, x: jax.vmap(lambda v: reference_outputs(model, v, x))(vs)[0]
                   .mean(axis=0))(p.variables, x)
    np.testing.assert_array_equal(p.probs_of_spectrograms(x), np.asarray(want))
    # and it is the mean of the members' own probabilities (up to rounding)
    each = [Predictor(config, v).probs_of_spectrograms(x) for v in members]
    np.testing.assert_allclose(p.probs_of_spectrograms(x), np.mean(each, axis=0), atol=1e-6)
    probs, feats = jax.jit(p._spectrogram_outputs)(p.variables, x)
    assert feats is None and probs.shape == (4, len(config.data.classes))


# -- BatchedInference -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variables(config, model):
    v = member_variables(config, model, 3)
    # running statistics away from their initial (0, 1), so that BatchNorm's eval mode matters
    rng = np.random.default_rng(3)
    v["batch_stats"] = jax.tree.map(
        lambda a: np.asarray(a) + 0.1 * np.abs(rng.normal(size=np.shape(a))).astype(np.float32),
        v["batch_stats"])
    return v


def unbatched(model, variables, x):
    """Every segment in one call of model.apply; probabilities by a numpy softmax."""
    out = {k: np.asarray(v) for k, v in model.apply(variables, x, train=False).items()}
    out.pop("centers", None)
    out["emotion_probs"] = numpy_softmax(out["emotion_logits"])
    if "domain_logits" in out:
        out["domain_probs"] = numpy_softmax(out["domain_logits"])
    return out


@pytest.mark.parametrize("batch_size,n", [(8, 13), (16, 20), (8, 3), (8, 16)])
def test_batched_inference_equals_one_unbatched_apply(config, model, variables, batch_size, n):
    run = BatchedInference(model, sharding.make_mesh(), batch_size)
    x = spectrograms(config, n, seed=n)
    got = run(variables, x)
    want = unbatched(model, variables, x)
    assert set(got) == set(want) and {"emotion_probs", "domain_probs", "deep_feature"} <= set(got)
    for k in want:
        assert got[k].shape == want[k].shape and got[k].shape[0] == n, k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_batched_inference_of_no_segments_is_empty(config, model, variables):
    run = BatchedInference(model, sharding.make_mesh(), 8)
    assert run(variables, np.zeros((0, *input_shape(config)), np.float32)) == {}


def test_dispatch_depth_and_padding_do_not_change_the_results(config, model, variables):
    """in_flight only orders fetches; a batch's rows do not depend on what pads it."""
    x = spectrograms(config, 37, seed=4)
    mesh = sharding.make_mesh()
    deep = BatchedInference(model, mesh, 8, in_flight=8)(variables, x)
    shallow = BatchedInference(model, mesh, 8, in_flight=1)(variables, x)
    for k in deep:
        np.testing.assert_array_equal(deep[k], shallow[k], err_msg=k)
    first = BatchedInference(model, mesh, 8)(variables, x[:32])  # the same full batches
    for k in deep:
        np.testing.assert_array_equal(deep[k][:32], first[k], err_msg=k)


def test_batched_inference_is_make_predict_fn_batch_by_batch(config, model, variables):
    """The last, padded batch gives the rows that the jitted function gives that batch."""
    x = spectrograms(config, 11, seed=5)
    run = BatchedInference(model, sharding.make_mesh(), 8)
    got = run(variables, x)
    padded = np.concatenate([x[8:], np.zeros((5, *x.shape[1:]), np.float32)])
    want = jax.device_get(run.predict(variables, padded, None))
    for k in got:
        np.testing.assert_array_equal(got[k][8:], want[k][:3], err_msg=k)
    direct = make_predict_fn(model)(variables, x[:8])
    np.testing.assert_allclose(got["emotion_probs"][:8], direct["emotion_probs"], rtol=1e-5,
                               atol=1e-6)
