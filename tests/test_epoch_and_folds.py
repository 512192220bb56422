"""The epoch as one lax.scan, and all folds in one vmapped program, equal the plain loops."""

import jax
import numpy as np
import pytest

from adarl_jax.config import input_shape
from adarl_jax.train.optim import learning_rate_schedule
from adarl_jax.train.train_step import (create_train_state_from_config, make_multi_fold_step,
                             make_train_epoch, make_train_step, stack_states)
from adarl_jax.train.trainer import epoch_order
from conftest import in_float64, tiny_config


@pytest.fixture(autouse=True)
def float64():
    """Both sides in float64, so that only a real difference can exceed the tolerance (in
    float32 another summation order, e.g. grouped convs under vmap, gives ~1e-7 a step that
    BatchNorm on 8-sample batches amplifies)."""
    with jax.enable_x64(True):
        yield


def _setup(seed=0):
    config = tiny_config("adarl")
    config.model.dtype = "float64"
    model, state, tx = create_train_state_from_config(config, jax.random.key(seed, impl="rbg"), 3)
    step = make_train_step(model, tx, (1.0, 1.0, 0.5), learning_rate_schedule(config, 3))
    return config, step, in_float64(state)


def _data(config, n, seed):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, *input_shape(config))),
            "emotion": rng.integers(-1, 4, n).astype(np.int32),
            "domain": rng.integers(0, 2, n).astype(np.int32),
            "weight": np.ones(n, np.float32)}


def _assert_trees_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_scanned_epoch_equals_step_loop():
    config, step, state = _setup()
    data = _data(config, 20, 0)
    jstep = jax.jit(step)
    jepoch = jax.jit(make_train_epoch(step))
    loop_state, scan_state = state, state
    for epoch in range(2):
        order = epoch_order(20, 8, 0, 0, epoch)
        losses = []
        for idx in order:
            loop_state, m = jstep(loop_state, jax.tree.map(lambda a: a[idx], data))
            losses.append(float(m["loss"]))
        scan_state, em = jepoch(scan_state, data, order)
        np.testing.assert_allclose(float(em["loss"]), np.mean(losses), rtol=1e-10)
    assert int(scan_state.step) == int(loop_state.step) == 6
    _assert_trees_close(loop_state.params, scan_state.params, rtol=1e-9, atol=1e-10)
    _assert_trees_close(loop_state.batch_stats, scan_state.batch_stats, rtol=1e-9, atol=1e-10)


def test_vmapped_folds_equal_folds_trained_one_by_one():
    config, step, _ = _setup()
    data = _data(config, 24, 1)
    # three "folds": different initial params and different training subsets
    states = [_setup(seed)[2] for seed in range(3)]
    subsets = [np.arange(0, 16), np.arange(8, 24), np.r_[0:8, 16:24]]
    multi = jax.jit(make_multi_fold_step(step))
    single = jax.jit(step)
    stacked = stack_states(states)
    for epoch in range(2):
        orders = [sub[epoch_order(len(sub), 8, 0, f, epoch)] for f, sub in enumerate(subsets)]
        for s in range(orders[0].shape[0]):
            batches = [jax.tree.map(lambda a: a[o[s]], data) for o in orders]
            stacked, _ = multi(stacked, jax.tree.map(lambda *xs: np.stack(xs), *batches))
            states = [single(st, b)[0] for st, b in zip(states, batches)]
    for f in range(3):
        fold_f = jax.tree.map(lambda x: x[f], stacked)
        _assert_trees_close(states[f].params, fold_f.params, rtol=1e-9, atol=1e-10)
    # the folds really differ from each other
    a, b = jax.tree.leaves(states[0].params)[0], jax.tree.leaves(states[1].params)[0]
    assert not np.allclose(a, b)


def test_a_fold_gives_the_same_result_with_either_loop(tmp_path):
    """trainer.run_fold: train.loop=scan (the accelerator default) and step (the CPU
    default) train the same fold to the same test probabilities."""
    from adarl_jax.data.folds import loso_folds
    from adarl_jax.data.reading import load_dataset
    from adarl_jax.train.trainer import run_fold
    from conftest import make_corpus

    from adarl_jax.train.sharding import make_mesh

    config = tiny_config("adarl")
    config.model.dtype = "float64"  # as the fixture: batch statistics stay float32 (cast back)
    config.data.corpus = "csv"
    config.data.manifest = str(make_corpus(tmp_path / "corpus"))
    config.train.balance = "class_gender"
    dataset = load_dataset(config, tmp_path / "w", progress=False)
    fold = loso_folds(dataset.utterances, 0, 0)[0]
    results = {}
    for loop in ("scan", "step"):
        c = config.copy_and_resolve_references()
        c.train.loop = loop
        results[loop] = run_fold(c, dataset, fold, tmp_path / loop, make_mesh(1), progress=False)
    scan, step = results["scan"], results["step"]
    assert scan["steps"] == step["steps"] > 0
    assert len(scan["utterances"]) == len(step["utterances"]) > 0
    np.testing.assert_allclose([u["probs"] for u in scan["utterances"]],
                               [u["probs"] for u in step["utterances"]], rtol=1e-5, atol=2e-6)
