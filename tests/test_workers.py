"""workers.py: `--workers N` splits the folds over N pinned processes into one workdir, with
the same results as one process."""

import json
import os
import shutil
import subprocess

import pytest

from adarl_jax.experiments.workers import split_folds, worker_argv

from conftest import make_corpus
from conftest import cli_env, tiny_train_args


def test_folds_are_dealt_round_robin_and_workers_get_their_share_only():
    assert split_folds([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert split_folds([3, 7], 4) == [[3], [7]]
    argv = ["reproduce", "--workdir", "w", "--folds", "0-4", "--workers=2", "--baselines",
            "egemaps", "--config.optim.lr=0.1"]
    assert worker_argv(argv, [1, 3]) == ["reproduce", "--workdir", "w", "--config.optim.lr=0.1",
                                         "--folds", "1,3", "--workers", "1", "--no-report",
                                         "--baselines", "none"]


def test_two_workers_give_the_same_results_as_one_process(tmp_path):
    """Each worker runs on one core, so the reference process does too: XLA:CPU sizes its
    thread pool from the cores it may use, and a different pool rounds differently."""
    env = cli_env(tmp_path)
    one_core = sorted(os.sched_getaffinity(0))[:1]
    if shutil.which("adarl-jax", path=env["PATH"]) is None:
        pytest.skip("the adarl-jax command is not installed (pip install -e .)")
    manifest = make_corpus(tmp_path / "corpus")
    runs = {}
    for n in (1, 2):
        workdir = tmp_path / f"w{n}"
        out = subprocess.run(["adarl-jax", "train", "--config", "smoke", "--workdir", str(workdir),
                              "--folds", "0-2", "--workers", str(n), "--no-progress",
                              *tiny_train_args(manifest)],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                             preexec_fn=(lambda: os.sched_setaffinity(0, one_core)) if n == 1 else None)
        assert out.returncode == 0, out.stdout + out.stderr
        runs[n] = json.loads((workdir / "results.json").read_text())
        if n == 2:
            assert "worker 1: folds 1" in out.stdout
        # one report, the parent's, of every fold: a worker's would cover its own folds only
        assert out.stdout.count("# Results") == 1, out.stdout
    assert runs[1] == runs[2]
    assert [f["fold"] for f in runs[2]["adarl"]["folds"]] == [0, 1, 2]


def test_one_worker_reads_the_dataset_once_for_the_folds_and_the_final_model(tmp_path,
                                                                              monkeypatch):
    """--workers 0 that comes to one worker: the parent prepares the workdir and trains the
    folds and the final model itself, with the one dataset it read."""
    from adarl_jax.cli import commands as cli
    from adarl_jax.data import reading
    from adarl_jax.experiments import loso, workers

    reads = []
    original = reading.load_checked_dataset  # every read of a workdir's dataset comes here

    def counting(*a, **kw):
        reads.append(a[0].model.variant)
        return original(*a, **kw)

    monkeypatch.setattr(reading, "load_checked_dataset", counting)  # load_dataset's reads
    monkeypatch.setattr(loso, "load_checked_dataset", counting)  # the runner's, imported by name
    monkeypatch.setattr(workers, "default_workers", lambda n: 1)
    manifest = make_corpus(tmp_path / "corpus", speakers=(("s1", "M"), ("s2", "F"), ("s3", "M")),
                           per_class=2)
    workdir = tmp_path / "w"
    argv = ["train", "--config", "smoke", "--workdir", str(workdir), "--variant", "backbone",
            "--workers", "0", "--no-progress", "--final", *tiny_train_args(manifest)]
    assert cli.main(argv) == 0
    assert reads == ["backbone"]
    assert len(list(workdir.glob("backbone/fold_*/result.json"))) == 3
    assert (workdir / "final" / "backbone" / "model.json").exists()
