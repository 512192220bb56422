"""Host overhead of the real training loop: `trainer.run_fold` with a model so small that
its compute is negligible, so what is left per step is what the host does.

  python benchmarks/bench_host.py                       # both loops, one JSON line
  python benchmarks/bench_host.py --loops step --trainer /tmp/old_trainer.py   # another trainer

Method: a synthetic in-memory fold (5 x 5 input, one channel a block, batch 8) is trained
twice per loop, with 1 step an epoch (many epochs) and with `--steps` steps an epoch. Each
epoch after the first (which compiles) is timed from its start to the next one's, in wall
time and in the process's CPU time (less sensitive to other processes on a shared machine);
the medians give time per epoch = a + b x steps, so `b` is the time per step and `a` the
fixed cost per epoch (fetching metrics, the jsonl record, the shuffle). For the step loop,
`bare_step_<clock>_ms` is the jitted step alone on device-resident data (dispatch and compute, no
host work) and `host_<clock>_ms_per_step` is `b - bare_step_<clock>_ms`; the scan loop has
no per-step host work, its cost is per epoch.
`--trainer` imports another copy of adarl_jax/train/trainer.py (e.g. an older commit's) to
compare before and after in the same conditions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tiny_config(loop: str):
    from adarl_jax.config import base_config, validate

    c = base_config()
    c.frontend.hop_s, c.frontend.n_fft, c.frontend.n_bins, c.frontend.n_frames = 0.6, 16, 5, 5
    c.model.block_pools = ((1, 1),) * 4
    c.model.block_features = ((1, 1),) * 4
    c.model.hidden, c.model.attention_hidden = 2, 1
    c.optim.batch_size = c.train.eval_batch_size = 8
    c.train.selection, c.train.loop, c.train.progress = "last", loop, False
    c.train.checkpoint_every_steps = 10 ** 9  # one checkpoint, after the last timed epoch
    validate(c)
    return c


def synthetic_fold(config, n_train: int, n_test: int = 8, seed: int = 0):
    """A SegmentDataset of random features (one segment an utterance) and its one fold."""
    from adarl_jax.config import input_shape
    from adarl_jax.data.corpora import Utterance
    from adarl_jax.data.dataset import SegmentDataset
    from adarl_jax.data.folds import Fold

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    speakers = ["a"] * (n_train // 2) + ["b"] * (n_train - n_train // 2) + ["t"] * n_test
    gender = np.array([i % 2 for i in range(n)], np.int32)
    utts = [Utterance(f"/synthetic/{i}.wav", s, "FM"[g], "anger", "synthetic")
            for i, (s, g) in enumerate(zip(speakers, gender))]
    ds = SegmentDataset(features=rng.normal(size=(n, *input_shape(config))).astype(np.float32),
                        segment_utt=np.arange(n, dtype=np.int32),
                        segment_start_s=np.zeros(n, np.float32), utterances=utts,
                        emotion=rng.integers(0, 4, n).astype(np.int32), gender=gender, skipped=[],
                        classes=tuple(config.data.classes))
    fold = Fold(0, "t", ("a", "b"), (), np.arange(n_train), np.arange(0), np.arange(n_train, n))
    return ds, fold


def epoch_seconds(trainer, config, steps: int, epochs: int, workdir: Path) -> dict:
    """Median wall and CPU (process) time of an epoch after the first, timed between the
    starts of consecutive epochs (the trainer's `epoch_order` is wrapped to mark them)."""
    config = config.copy_and_resolve_references()
    config.optim.epochs = epochs
    ds, fold = synthetic_fold(config, steps * int(config.optim.batch_size))
    marks, order_fn = [], trainer.epoch_order

    def marked(*a, **kw):
        marks.append((time.perf_counter(), time.process_time()))
        return order_fn(*a, **kw)

    trainer.epoch_order = marked
    try:
        trainer.run_fold(config, ds, fold, workdir / f"{config.train.loop}_{steps}", progress=False)
    finally:
        trainer.epoch_order = order_fn
    d = np.diff(np.array(marks[1:]), axis=0)  # epoch 0 compiles
    return {"wall": float(np.median(d[:, 0])), "cpu": float(np.median(d[:, 1]))}


def bare_step_ms(config, reps: int = 300) -> dict:
    """The jitted, donated step on a batch already on the device: dispatch + compute only."""
    import jax

    from adarl_jax.train import sharding
    from adarl_jax.config import input_shape
    from adarl_jax.model import build_model, init_variables
    from adarl_jax.train.optim import learning_rate_schedule, make_optimizer
    from adarl_jax.train.train_step import create_train_state, make_train_step

    mesh = sharding.make_mesh(1)
    model = build_model(config)
    tx = make_optimizer(config, 1)
    state = create_train_state(init_variables(model, input_shape(config), jax.random.key(0)), tx, 4)
    state = sharding.put_replicated(state, mesh)
    step = sharding.jit_train_step(make_train_step(model, tx, (1.0, 1.0, 0.5),
                                                   learning_rate_schedule(config, 1)), mesh)
    ds, _ = synthetic_fold(config, 8)
    b = int(config.optim.batch_size)
    batch = sharding.put_batch({"x": ds.features[:b], "emotion": ds.emotion[:b],
                                "domain": ds.gender[:b], "weight": np.ones(b, np.float32)}, mesh)
    state, m = step(state, batch)
    jax.block_until_ready(m)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(reps):
        state, m = step(state, batch)
    jax.block_until_ready((state, m))
    return {"wall": (time.perf_counter() - t) / reps * 1e3, "cpu": (time.process_time() - c) / reps * 1e3}


def load_trainer(path: str | None):
    if not path:
        from adarl_jax.train import trainer

        return trainer
    spec = importlib.util.spec_from_file_location("_bench_trainer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(trainer, loop: str, steps: int, epochs: int, workdir: Path) -> dict:
    config = tiny_config(loop)
    one = epoch_seconds(trainer, config, 1, epochs, workdir)
    many = epoch_seconds(trainer, config, steps, max(6, epochs // steps * 2), workdir)
    out = {"steps_per_epoch": [1, steps]}
    for clock in ("wall", "cpu"):
        per_step = (many[clock] - one[clock]) / (steps - 1)
        out[f"{clock}_ms_per_step"] = round(per_step * 1e3, 3)
        out[f"{clock}_ms_per_epoch"] = round((one[clock] - per_step) * 1e3, 3)
    if loop == "step":
        for clock, ms in bare_step_ms(config).items():
            out[f"bare_step_{clock}_ms"] = round(ms, 3)
            out[f"host_{clock}_ms_per_step"] = round(out[f"{clock}_ms_per_step"] - ms, 3)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loops", default="step,scan", help="comma-separated: step, scan")
    p.add_argument("--steps", type=int, default=40, help="steps an epoch of the long run")
    p.add_argument("--epochs", type=int, default=200, help="epochs of the 1-step run")
    p.add_argument("--trainer", default="", help="path of another trainer.py to measure")
    p.add_argument("--label", default="", help="copied into the JSON line")
    args = p.parse_args(argv)
    import jax

    trainer = load_trainer(args.trainer)
    out = {"bench": "host", "label": args.label, "trainer": args.trainer or "adarl_jax.train.trainer",
           "jax": jax.__version__, "backend": jax.default_backend()}
    with tempfile.TemporaryDirectory() as tmp:
        for loop in args.loops.split(","):
            out[loop] = measure(trainer, loop, args.steps, args.epochs, Path(tmp))
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)
