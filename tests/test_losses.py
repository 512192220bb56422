import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.train import losses


def _numpy_ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


def _batch(rng, n=6, k=4, d=5):
    return {
        "emotion_logits": rng.normal(size=(n, k)),
        "domain_logits": rng.normal(size=(n, 2)),
        "deep_feature": rng.normal(size=(n, d)),
        "centers": rng.normal(size=(k, d)),
    }


def test_total_loss_matches_numpy_eq9():
    rng = np.random.default_rng(0)
    out = _batch(rng)
    emotion = np.array([0, 1, 2, 3, 1, 0])
    domain = np.array([0, 1, 1, 0, 0, 1])
    batch = {"emotion": emotion, "domain": domain, "weight": np.ones(6)}
    loss, m = losses.total_loss({k: jnp.asarray(v) for k, v in out.items()}, batch, (1.0, 1.0, 0.5))
    ce_e = _numpy_ce(out["emotion_logits"], emotion).mean()
    ce_d = _numpy_ce(out["domain_logits"], domain).mean()
    cen = ((out["deep_feature"] - out["centers"][emotion]) ** 2).sum(-1).mean()
    assert float(m["loss_emotion"]) == pytest.approx(ce_e, rel=1e-5)
    assert float(m["loss_domain"]) == pytest.approx(ce_d, rel=1e-5)
    assert float(m["loss_center"]) == pytest.approx(cen, rel=1e-5)
    assert float(loss) == pytest.approx(ce_d + ce_e + 0.5 * cen, rel=1e-5)


def test_samples_without_emotion_label_only_train_the_domain_head():
    rng = np.random.default_rng(1)
    out = _batch(rng)
    emotion = np.array([0, 1, -1, -1, 2, 3])
    domain = np.array([0, 1, 1, 0, 0, 1])
    keep = emotion >= 0
    batch = {"emotion": emotion, "domain": domain, "weight": np.ones(6)}
    _, m = losses.total_loss({k: jnp.asarray(v) for k, v in out.items()}, batch, (1.0, 1.0, 0.5))
    assert float(m["loss_emotion"]) == pytest.approx(_numpy_ce(out["emotion_logits"][keep], emotion[keep]).mean(), rel=1e-5)
    cen = ((out["deep_feature"][keep] - out["centers"][emotion[keep]]) ** 2).sum(-1).mean()
    assert float(m["loss_center"]) == pytest.approx(cen, rel=1e-5)
    # the domain term still sees all six samples
    assert float(m["loss_domain"]) == pytest.approx(_numpy_ce(out["domain_logits"], domain).mean(), rel=1e-5)
    assert float(m["n_emotion"]) == 4


def test_padding_weight_zero_changes_nothing():
    rng = np.random.default_rng(2)
    out = _batch(rng)
    emotion = np.array([0, 1, 2, 3, 1, 0])
    domain = np.array([0, 1, 1, 0, 0, 1])
    full = {k: jnp.asarray(v[:4]) if k != "centers" else jnp.asarray(v) for k, v in out.items()}
    l4, _ = losses.total_loss(full, {"emotion": emotion[:4], "domain": domain[:4], "weight": np.ones(4)}, (1, 1, 0.5))
    w = np.array([1, 1, 1, 1, 0, 0.0])
    l6, _ = losses.total_loss({k: jnp.asarray(v) for k, v in out.items()},
                              {"emotion": emotion, "domain": domain, "weight": w}, (1, 1, 0.5))
    assert float(l6) == pytest.approx(float(l4), rel=1e-6)


def test_class_weights_reweight_emotion_terms():
    rng = np.random.default_rng(3)
    out = {k: jnp.asarray(v) for k, v in _batch(rng).items()}
    emotion = np.array([0, 0, 0, 0, 1, 1])
    batch = {"emotion": emotion, "domain": np.zeros(6, int), "weight": np.ones(6)}
    cw = jnp.array([0.5, 2.0, 1.0, 1.0])
    _, m = losses.total_loss(out, batch, (1, 1, 0.5), cw)
    ce = _numpy_ce(np.asarray(out["emotion_logits"]), emotion)
    w = np.array([0.5] * 4 + [2.0] * 2)
    assert float(m["loss_emotion"]) == pytest.approx((ce * w).sum() / w.sum(), rel=1e-5)


def test_emotion_heads_are_each_trained_by_their_own_cross_entropy():
    """A variant returning `emotion_heads` (adarl_fusion_late): the emotion term is the mean of
    the heads' cross-entropies; `emotion_logits` (their combination) is not trained."""
    rng = np.random.default_rng(3)
    out = _batch(rng)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)) * 3
    emotion = np.array([0, 1, 2, 3, 1, -1])
    batch = {"emotion": emotion, "domain": np.zeros(6, int), "weight": np.ones(6)}
    got = {k: jnp.asarray(v) for k, v in out.items()}
    got["emotion_heads"] = (jnp.asarray(a), jnp.asarray(b))
    _, m = losses.total_loss(got, batch, (1.0, 1.0, 0.5))
    labelled = emotion >= 0
    want = (_numpy_ce(a[labelled], emotion[labelled]).mean()
            + _numpy_ce(b[labelled], emotion[labelled]).mean()) / 2
    assert float(m["loss_emotion"]) == pytest.approx(want, rel=1e-5)
