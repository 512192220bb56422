"""The training loop without host stalls (adarl_jax.train.epochs) trains exactly as a plain loop that
converts every step's metrics to Python floats at once; divergence is caught per epoch."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adarl_jax.train import sharding
from adarl_jax.config import input_shape
from adarl_jax.train.epochs import (ScanLoop, StepLoop, all_finite, check_diverged, finish_epoch,
                                    held_rows)
from adarl_jax.train.optim import learning_rate_schedule
from adarl_jax.train.train_step import create_train_state_from_config, make_train_epoch, make_train_step
from adarl_jax.train.trainer import epoch_order
from conftest import make_corpus, tiny_config

EPOCHS, N, B = 3, 28, 8  # 4 steps an epoch, the last batch filled by redrawn segments


def _smoke(seed=0, n=N):
    config = tiny_config()
    model, state, tx = create_train_state_from_config(config, jax.random.key(seed, impl="rbg"),
                                                      N // B + 1)
    step = make_train_step(model, tx, (1.0, 1.0, 0.5), learning_rate_schedule(config, N // B + 1),
                           seed=3)
    # on the host: each side places its own copy (a donated step deletes what it was given)
    state = jax.device_get(state)
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(n, *input_shape(config))).astype(np.float32), np.arange(n),
            rng.integers(-1, 4, n).astype(np.int32), rng.integers(0, 2, n).astype(np.int32))
    return step, state, data


def _reference(step, state, data, scan: bool):
    """The loop as it was written before: float() of every step's metrics (the scanned epoch:
    of its means), summed in step order."""
    features, segs, emotion, domain = data
    n = len(segs)
    mesh = sharding.make_mesh(1)
    state = sharding.put_replicated(state, mesh)
    jstep = sharding.jit_train_step(step, mesh)
    jepoch = sharding.jit_train_epoch(make_train_epoch(step, sharding.batch_sharded(mesh)), mesh)
    whole = sharding.put_replicated({"x": features[segs], "emotion": emotion, "domain": domain,
                                     "weight": np.ones(n, np.float32)}, mesh)
    history = []
    for epoch in range(EPOCHS):
        order = epoch_order(n, B, 0, 0, epoch)
        if scan:
            state, m = jepoch(state, whole, sharding.put_replicated(order, mesh))
            history.append({k: float(v) for k, v in m.items()})
            continue
        sums = {}
        for idx in order:
            batch = {"x": features[segs[idx]], "emotion": emotion[idx], "domain": domain[idx],
                     "weight": np.ones(B, np.float32)}
            state, m = jstep(state, sharding.put_batch(batch, mesh))
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + float(v)
        history.append({k: v / len(order) for k, v in sums.items()})
    return jax.device_get(state), history


@pytest.mark.parametrize("loop_cls,n", [(StepLoop, N), (ScanLoop, N), (ScanLoop, N - 3)],
                         ids=["step", "scan", "scan-padded"])
def test_loop_equals_the_per_step_float_loop_bit_for_bit(loop_cls, n):
    """Same jitted step, same batches in the same order: parameters, BatchNorm statistics and
    epoch means are identical (not merely close); the metrics' float64 sum runs in step order
    as before, and prefetching changes where a batch is copied, not what it holds. The scanned
    epoch of 25 segments holds 26 rows (held_rows), the reference exactly 25."""
    step, state, data = _smoke(n=n)
    ref_state, ref_history = _reference(step, state, data, scan=loop_cls is ScanLoop)
    mesh = sharding.make_mesh(1)
    loop = loop_cls(step, mesh, *data)
    state, history, steps = sharding.put_replicated(state, mesh), [], []
    for epoch in range(EPOCHS):
        counted = []
        state, metrics = loop(state, epoch_order(n, B, 0, 0, epoch), lambda: counted.append(1))
        means, at, finite = finish_epoch(metrics, state)
        history.append(means)
        steps.append((at, len(counted)))
        assert finite
    assert steps == [(4, 4), (8, 4), (12, 4)]
    assert history == ref_history
    for a, b in zip(jax.tree.leaves((ref_state.params, ref_state.batch_stats, ref_state.opt_state)),
                    jax.tree.leaves(jax.device_get((state.params, state.batch_stats, state.opt_state)))):
        np.testing.assert_array_equal(a, b)


def test_held_rows_is_the_least_number_of_the_form_m_times_a_power_of_two():
    """Against the ladder written out: every m * 2**k (8 <= m < 16), and 1..16 themselves."""
    ladder = sorted({*range(1, 17), *(m * 2 ** k for m in range(8, 16) for k in range(1, 12))})
    for n in range(1, 6000):
        held = held_rows(n)
        assert held == next(v for v in ladder if v >= n), n
        assert held - n <= n / 8
    assert held_rows(25) == 26 and held_rows(28) == 28 and held_rows(300) == 320
    with pytest.raises(ValueError, match="a training set of 0 segments"):
        held_rows(0)


def test_scanned_epochs_of_training_sets_that_round_alike_compile_once():
    """Two folds' sets (25 and 26 segments, both held as 26 rows) run one traced epoch; a set
    of 30 (held as 30) needs its own; an order past the set is refused before it runs."""
    step, state, _ = _smoke()
    traced = []

    def counting_step(s, b):
        traced.append(1)  # runs only while jax traces the step
        return step(s, b)

    mesh = sharding.make_mesh(1)
    epoch = make_train_epoch(counting_step, sharding.batch_sharded(mesh))
    for n, expected in ((25, 1), (26, 1), (30, 2)):
        _, _, data = _smoke(n=n)
        loop = ScanLoop(counting_step, mesh, *data, train_epoch=epoch)
        loop(sharding.put_replicated(state, mesh), epoch_order(n, B, 0, 0, 0))
        assert len(traced) == expected, n
    with pytest.raises(IndexError, match="indexes segment 30 of a training set of 30"):
        loop(sharding.put_replicated(state, mesh), np.array([[0, 30]]))
    with pytest.raises(IndexError, match="indexes segment -1 of a training set of 30"):
        loop(sharding.put_replicated(state, mesh), np.array([[5, -1]]))


def test_the_scanned_epoch_holds_every_field_padded_in_its_own_dtype():
    """Functionals (the one field whose dtype the caller picks) and labels keep their dtypes;
    the real rows come first, unchanged, the padding is zeros."""
    step, _, (features, segs, emotion, domain) = _smoke(n=25)
    functionals = np.arange(25 * 3, dtype=np.float64).reshape(25, 3)
    loop = ScanLoop(step, sharding.make_mesh(1), features, segs, emotion, domain, functionals)
    held = jax.device_get(loop.data)
    assert {k: (v.shape[0], v.dtype) for k, v in held.items()} == {
        "x": (26, np.float32), "emotion": (26, emotion.dtype), "domain": (26, domain.dtype),
        "weight": (26, np.float32), "functionals": (26, jax.dtypes.canonicalize_dtype(np.float64))}
    np.testing.assert_array_equal(held["x"][:25], features)
    np.testing.assert_array_equal(held["functionals"][:25], functionals.astype(held["functionals"].dtype))
    assert not held["x"][25:].any() and not held["weight"][25:].any()


def test_step_loop_prefetches_one_batch_ahead(monkeypatch):
    """While step i is dispatched, batch i+1 is already on the device (double buffering)."""
    events = []
    put = sharding.put_batch

    def recording_put(batch, mesh):
        if "x" in batch:
            events.append("put")
        return put(batch, mesh)

    monkeypatch.setattr(sharding, "put_batch", recording_put)
    step, state, data = _smoke()
    mesh = sharding.make_mesh(1)
    loop = StepLoop(step, mesh, *data)
    loop.step = (lambda f: lambda s, b: (events.append("step"), f(s, b))[1])(loop.step)
    loop(sharding.put_replicated(state, mesh), epoch_order(N, B, 0, 0, 0))
    assert events == ["put", "put", "step", "put", "step", "put", "step", "step"]


def test_all_finite_sees_one_nan_anywhere_in_the_tree():
    tree = {"a": np.ones((3, 2), np.float32), "b": {"c": np.zeros(4, np.float32)},
            "step": np.int32(3)}
    assert bool(all_finite(tree))
    tree["b"]["c"][2] = np.inf
    assert not bool(all_finite(tree))


def test_all_finite_over_mixed_float_dtypes_scalars_and_no_floats():
    tree = {"w": jnp.ones((2, 3), jnp.bfloat16), "s": jnp.float32(2.0), "n": jnp.int32(7)}
    assert bool(all_finite(tree))
    assert not bool(all_finite({**tree, "w": tree["w"].at[1, 2].set(jnp.nan)}))
    assert not bool(all_finite({**tree, "s": jnp.float32(-np.inf)}))
    assert bool(all_finite({"n": jnp.int32(7)})) and bool(all_finite({}))


def test_divergence_message_names_the_step_and_the_loss_terms():
    means = {"loss": 1.5, "emotion_loss": 0.9, "domain_loss": 0.6, "lr": 0.1}
    check_diverged(means, True, "fold 0 (s1), epoch 2", 30, 0.1)  # finite: no error
    with pytest.raises(FloatingPointError, match=r"step 30: the parameters are not finite.*"
                                                 r"emotion_loss 0\.9.*lower optim\.lr"):
        check_diverged(means, False, "fold 0 (s1), epoch 2", 30, 0.1)
    with pytest.raises(FloatingPointError, match=r"epoch 2, step 30: the training loss is nan"):
        check_diverged({**means, "loss": float("nan")}, True, "fold 0 (s1), epoch 2", 30, 0.1)


def test_a_diverged_fold_raises_and_writes_no_result(tmp_path):
    from adarl_jax.data.folds import loso_folds
    from adarl_jax.data.reading import load_dataset
    from adarl_jax.experiments.loso import run_folds
    from adarl_jax.train.trainer import run_fold
    from adarl_jax.workdir.layout import fold_dir, result_path
    config = tiny_config("adarl")
    config.data.corpus = "csv"
    config.data.manifest = str(make_corpus(tmp_path / "corpus"))
    config.optim.lr = 1e30
    dataset = load_dataset(config, tmp_path / "w", progress=False)
    fold = loso_folds(dataset.utterances, 0, 0)[0]
    with pytest.raises(FloatingPointError, match=r"fold 0 .*epoch 0, step \d+: .*diverged"):
        run_folds(tmp_path / "w", "adarl", [fold], lambda f, d: run_fold(
            config, dataset, f, d, sharding.make_mesh(1), progress=False), progress=False)
    assert not result_path(fold_dir(tmp_path / "w", "adarl", fold)).exists()


def _events(path):
    """The Event protos of a TFRecord file, read by hand: length (8 bytes), its CRC (4), the
    record, its CRC (4)."""
    from tensorboardX.proto.event_pb2 import Event

    raw, out, at = path.read_bytes(), [], 0
    while at < len(raw):
        n = int.from_bytes(raw[at:at + 8], "little")
        out.append(Event.FromString(raw[at + 12:at + 12 + n]))
        at += 12 + n + 4
    return out


def test_tensorboard_events_hold_one_scalar_per_metric_per_epoch(tmp_path):
    """log.tensorboard=True (smoke config): the fold folder's event file holds every number of
    metrics.jsonl, tagged train/<name> and val/<name>, at its epoch."""
    pytest.importorskip("tensorboardX")
    from adarl_jax.data.folds import loso_folds
    from adarl_jax.data.reading import load_dataset
    from adarl_jax.train.trainer import run_fold

    config = tiny_config()
    config.log.tensorboard, config.train.selection, config.data.corpus = True, "val", "csv"
    speakers = tuple((f"s{i}", "MF"[i % 2]) for i in range(6))  # a validation speaker per gender
    config.data.manifest = str(make_corpus(tmp_path / "corpus", speakers=speakers, per_class=1))
    dataset = load_dataset(config, tmp_path / "w", progress=False)
    fold = loso_folds(dataset.utterances, 1, 0)[0]
    result = run_fold(config, dataset, fold, tmp_path / "f", sharding.make_mesh(1), progress=False)
    # the selected model's rows for its validation speakers (per-model figures), never scored
    assert {u["speaker"] for u in result["val_utterances"]} == set(fold.val_speakers)
    assert len(result["val_utterances"]) == len(fold.val) and "val" not in result["test"]
    files = list((tmp_path / "f" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    got = {(v.tag, e.step): v.simple_value for e in _events(files[0]) for v in e.summary.value}
    records = [json.loads(l) for l in (tmp_path / "f" / "metrics.jsonl").read_text().splitlines()]
    want = {}
    for r in records:
        for k, v in r.items():
            if k.startswith(("train_", "val_")) and not isinstance(v, bool):
                want[(k.replace("_", "/", 1), r["epoch"])] = v
    assert {("train/loss", 0), ("train/loss", 1), ("val/ua", 1)} <= set(want)
    assert set(got) == set(want)
    for key, v in want.items():
        assert got[key] == pytest.approx(v, rel=1e-6), key


def test_tensorboard_off_by_default_writes_no_events(tmp_path):
    from adarl_jax.train.tb import open_scalar_log

    assert open_scalar_log(tiny_config(), tmp_path) is None
    assert not any(tmp_path.iterdir())
