import jax
import jax.numpy as jnp
import numpy as np

from adarl_jax.data import augment
from adarl_jax.config import input_shape
from adarl_jax.train.trainer import epoch_order, sampling_groups
from conftest import tiny_config


def test_spec_mask_zeroes_whole_bands_no_wider_than_asked():
    x = jnp.ones((16, 20, 30, 3))
    y = np.asarray(augment.spec_mask(jax.random.key(0), x, 1, 0.2, 1, 0.1))
    for b in range(16):
        rows = np.where(np.all(y[b] == 0, axis=(1, 2)))[0]
        cols = np.where(np.all(y[b] == 0, axis=(0, 2)))[0]
        assert len(rows) <= 4 and len(cols) <= 3
        if len(rows):
            assert rows.max() - rows.min() + 1 == len(rows)  # one contiguous band
        # everything outside the bands is untouched
        keep = np.ones((20, 30), bool)
        keep[rows, :] = False
        keep[:, cols] = False
        assert np.all(y[b][keep] == 1)
    assert (y == 0).any(), "no mask was drawn in 16 samples"


def test_freq_warp_matches_numpy_interpolation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12, 5, 2)).astype(np.float32)
    key = jax.random.key(1)
    y = np.asarray(augment.freq_warp(key, jnp.asarray(x), 0.2))
    alpha = np.asarray(jax.random.uniform(key, (3,), minval=0.8, maxval=1.2))
    for b in range(3):
        src = np.arange(12) / alpha[b]
        for r in range(12):
            if src[r] >= 11:
                np.testing.assert_allclose(y[b, r], 0, atol=1e-6)
                continue
            lo = int(np.floor(src[r]))
            f = src[r] - lo
            np.testing.assert_allclose(y[b, r], x[b, lo] * (1 - f) + x[b, lo + 1] * f, rtol=1e-5, atol=1e-5)


def test_make_augment_is_off_by_default_and_deterministic_per_key():
    config = tiny_config()
    assert augment.make_augment(config) is None
    config.augment.freq_masks, config.augment.freq_warp = 2, 0.1
    aug = augment.make_augment(config)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, *input_shape(config))), jnp.float32)
    a, b = aug(jax.random.key(3), x), aug(jax.random.key(3), x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(aug(jax.random.key(4), x), a)


def test_balanced_sampling_draws_groups_equally():
    config = tiny_config()
    config.train.balance = "class_gender"
    emotion = np.array([0] * 90 + [1] * 10, np.int32)
    domain = np.array([0, 1] * 50, np.int32)
    groups = sampling_groups(config, emotion, domain)
    order = np.concatenate([epoch_order(100, 10, 0, 0, e, groups).ravel() for e in range(30)])
    share_class1 = np.mean(emotion[order] == 1)
    share_gender1 = np.mean(domain[order] == 1)
    assert 0.45 < share_class1 < 0.55  # 10% of the data, half of the draws
    assert 0.45 < share_gender1 < 0.55
    config.train.balance = "none"
    assert sampling_groups(config, emotion, domain) is None
    plain = epoch_order(100, 10, 0, 0, 0)
    assert sorted(plain.ravel().tolist()) == list(range(100))


def _labelled_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 6, 5, 3)).astype(np.float32),
            "emotion": (np.arange(n) % 4).astype(np.int32),
            "domain": (np.arange(n) // 4 % 2).astype(np.int32),
            "weight": np.array([1.0] * (n - 1) + [0.0], np.float32)}  # the last is padding


def test_mixup_mixes_each_sample_with_one_partner_under_one_weight():
    batch = _labelled_batch()
    x, own, partner, lam = augment.mixup(jax.random.key(5), jax.tree.map(jnp.asarray, batch), 0.4)
    x, lam = np.asarray(x), float(lam)
    assert 0.0 < lam < 1.0
    perm = []
    for i in range(8):  # the partner of sample i: the one row that explains x[i]
        fits = [j for j in range(8) if np.allclose(x[i], lam * batch["x"][i] + (1 - lam) * batch["x"][j],
                                                   atol=1e-5)]
        assert len(fits) == 1, (i, fits)
        perm.append(fits[0])
    assert sorted(perm) == list(range(8)), "partners are a permutation of the batch"
    pair_weight = batch["weight"] * batch["weight"][perm]
    np.testing.assert_array_equal(own["emotion"], batch["emotion"])
    np.testing.assert_array_equal(partner["emotion"], batch["emotion"][perm])
    np.testing.assert_array_equal(partner["domain"], batch["domain"][perm])
    np.testing.assert_array_equal(own["weight"], pair_weight)
    np.testing.assert_array_equal(partner["weight"], pair_weight)


def test_train_step_with_mixup_minimises_the_lam_weighted_loss_of_both_label_sets():
    from adarl_jax.train import losses
    from adarl_jax.train.train_step import create_train_state_from_config, make_train_step

    config = tiny_config()
    model, state, tx = create_train_state_from_config(config, jax.random.key(0, impl="rbg"), 2)
    rng = np.random.default_rng(1)
    batch = _labelled_batch()
    batch["x"] = rng.normal(size=(8, *input_shape(config))).astype(np.float32)
    batch = jax.tree.map(jnp.asarray, batch)
    seed, weights = 3, (1.0, 1.0, 0.5)
    _, metrics = jax.jit(make_train_step(model, tx, weights, seed=seed, mixup_alpha=0.4))(state, batch)
    _, plain = jax.jit(make_train_step(model, tx, weights, seed=seed))(state, batch)

    # the same draw by hand: key (seed, step 0), folded with 1 for mixup
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed, impl="rbg"), 0), 1)
    x, own, partner, lam = augment.mixup(key, batch, 0.4)
    out, _ = model.apply(state.variables, x, train=True, mutable=["batch_stats"])
    expected = (lam * losses.total_loss(out, own, weights)[0]
                + (1 - lam) * losses.total_loss(out, partner, weights)[0])
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
    assert not np.isclose(metrics["loss"], plain["loss"], rtol=1e-3), "mixup changed nothing"
