"""A run killed with SIGKILL mid-fold resumes and ends with the same parameters."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from adarl_jax.train.checkpoint import FoldCheckpointer
from conftest import REPO, TINY_OVERRIDES, make_corpus


def _cmd(manifest, workdir, epochs):
    return [sys.executable, "-m", "adarl_jax.cli", "train", "--config", "smoke", "--corpus", "csv",
            "--manifest", str(manifest), "--workdir", str(workdir), "--folds", "0",
            "--no-progress", *TINY_OVERRIDES, f"--config.optim.epochs={epochs}"]


def _env(tmp_path):
    env = dict(os.environ)
    env["ADARL_JAX_COMPILATION_CACHE"] = str(tmp_path / "xla")
    env["XLA_FLAGS"] = ""
    return env


def _final_params(workdir):
    fold = next((workdir / "adarl").glob("fold_00_*"))
    ck = FoldCheckpointer(fold / "checkpoints")
    step = ck.latest_step()
    restored = ck._manager.restore(step)  # raw restore: a nested dict of numpy arrays
    return step, restored["state"]["params"]


def test_sigkill_mid_fold_then_rerun_gives_same_params(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", per_class=3)
    epochs = 40
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_cmd(manifest, ref_dir, epochs), check=True, cwd=REPO, env=_env(tmp_path),
                   capture_output=True)

    proc = subprocess.Popen(_cmd(manifest, run_dir, epochs), cwd=REPO, env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = list(run_dir.glob("adarl/fold_00_*/checkpoints/[0-9]*"))
        if len(found) >= 1 and ckpt_dir is None:
            ckpt_dir = found[0].parent
        if ckpt_dir is not None and FoldCheckpointer(ckpt_dir).latest_step() not in (None, 0):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fold = next((run_dir / "adarl").glob("fold_00_*"))
    assert not (fold / "result.json").exists(), "the run finished before it could be killed"
    killed_at = FoldCheckpointer(fold / "checkpoints").latest_step()
    assert killed_at is not None and killed_at < epochs - 1

    out = subprocess.run(_cmd(manifest, run_dir, epochs), check=True, cwd=REPO, env=_env(tmp_path),
                         capture_output=True, text=True)
    assert (fold / "result.json").exists(), out.stderr
    step_ref, ref = _final_params(ref_dir)
    step_run, run = _final_params(run_dir)
    assert step_ref == step_run == epochs - 1
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(run)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # metrics.jsonl has exactly one line per epoch after the resume
    lines = (fold / "metrics.jsonl").read_text().splitlines()
    assert [int(__import__("json").loads(l)["epoch"]) for l in lines] == list(range(epochs))


def test_sparse_checkpoints_train_the_same_model_and_keep_the_best(tmp_path):
    """train.checkpoint_every_steps only changes when state is written, not what is trained;
    the validation-selected best is written with the next checkpoint."""
    manifest = make_corpus(tmp_path / "corpus", speakers=(("s1", "M"), ("s2", "F"), ("s3", "M"),
                                                          ("s4", "F"), ("s5", "M"), ("s6", "F")))
    results = {}
    for every in (0, 5):
        workdir = tmp_path / f"w{every}"
        subprocess.run(_cmd(manifest, workdir, 6) + [f"--config.train.checkpoint_every_steps={every}",
                                                     "--config.train.selection=val"],
                       check=True, cwd=REPO, env=_env(tmp_path), capture_output=True)
        fold = next((workdir / "adarl").glob("fold_00_*"))
        results[every] = __import__("json").loads((fold / "result.json").read_text())
        best = FoldCheckpointer(fold / "best").latest_step()
        assert best == results[every]["selected_epoch"]
    assert results[0]["utterances"] == results[5]["utterances"]
    assert results[0]["selected_epoch"] == results[5]["selected_epoch"]


def test_a_damaged_last_checkpoint_resumes_from_the_one_before(tmp_path, caplog):
    """A truncated data file in the newest checkpoint: the rerun says so, falls back to the
    previous epoch's checkpoint, trains the lost epoch again, and ends where an undamaged run
    ends."""
    import json
    import logging

    from adarl_jax.data.folds import loso_folds
    from adarl_jax.data.reading import load_dataset
    from adarl_jax.train.sharding import make_mesh
    from adarl_jax.train.trainer import run_fold
    from conftest import tiny_config

    config = tiny_config("adarl")
    config.optim.epochs = 3
    config.data.corpus = "csv"
    config.data.manifest = str(make_corpus(tmp_path / "corpus"))
    dataset = load_dataset(config, tmp_path / "w", progress=False)
    fold = loso_folds(dataset.utterances, 0, 0)[0]
    fold_dir = tmp_path / "w" / "adarl" / "fold_00"
    first = run_fold(config, dataset, fold, fold_dir, make_mesh(1), progress=False)

    # as if killed after the last checkpoint, before the result was written
    last = fold_dir / "checkpoints" / "2"
    data = max((p for p in last.rglob("*") if p.is_file() and p.parent.name == "d"),
               key=lambda p: p.stat().st_size)
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    with caplog.at_level(logging.WARNING, logger="adarl_jax.train.checkpoint"):
        again = run_fold(config, dataset, fold, fold_dir, make_mesh(1), progress=False)
    assert "epoch 2" in caplog.text and data.name in caplog.text
    assert "Falling back to the checkpoint of epoch 1" in caplog.text
    assert again["utterances"] == first["utterances"]
    epochs = [json.loads(l)["epoch"] for l in (fold_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]
