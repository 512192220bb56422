"""workers.py: `--workers N` trains the folds in N pinned processes into one workdir, each
(variant, fold) by the worker that claims it first, with the same results as one process."""

import json
import os
import shutil
import subprocess

import pytest

from adarl_jax.experiments.workers import Claims, worker_argv

from conftest import make_corpus
from conftest import cli_env, tiny_train_args


def test_workers_get_every_fold_and_the_claims_folder_and_no_job_wide_steps():
    argv = ["reproduce", "--workdir", "w", "--folds", "0-4", "--workers=2", "--baselines",
            "egemaps", "--config.optim.lr=0.1", "--claims", "old"]
    assert worker_argv(argv, [0, 1, 2, 3, 4], "w/.locks/claims_7") == [
        "reproduce", "--workdir", "w", "--config.optim.lr=0.1", "--folds", "0,1,2,3,4",
        "--claims", "w/.locks/claims_7", "--workers", "1", "--no-report", "--baselines", "none"]


CLAIMER = """
import json, sys, time
from adarl_jax.experiments.workers import Claims
claims = Claims(sys.argv[1])
while time.time() < float(sys.argv[2]):  # start together
    pass
print(json.dumps([[v, k] for v in ("adarl", "backbone") for k in range(40) if claims.take(v, k)]))
"""


def test_each_task_is_claimed_once_among_racing_processes(tmp_path):
    import sys
    import time

    claims = Claims(tmp_path / "claims")
    claims.folder.mkdir()
    start = time.time() + 6.0  # after every process has imported the package
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(claims.folder), str(start)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    won = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    taken = sorted(tuple(t) for tasks in won for t in tasks)
    assert taken == [(v, k) for v in ("adarl", "backbone") for k in range(40)]  # once each
    assert not claims.take("adarl", 3)  # a claimed task stays claimed
    owner = json.loads((claims.folder / "adarl.fold_03").read_text())
    assert {"pid", "host"} <= set(owner)  # who took it
    claims.clear()
    assert not claims.folder.exists()
    with pytest.raises(RuntimeError, match="claims folder .* is gone"):
        claims.take("adarl", 0)


def test_each_parent_gets_an_empty_claims_folder_of_its_own(tmp_path):
    first = Claims.for_parent(tmp_path)
    assert first.take("adarl", 0)
    second = Claims.for_parent(tmp_path)  # another job's parent in the same workdir
    assert second.folder != first.folder and second.take("adarl", 0)
    for c in (first, second):
        assert c.folder.parent == tmp_path / ".locks" and str(os.getpid()) in c.folder.name


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
            assert "worker 1: on core(s)" in out.stdout
            assert not list((workdir / ".locks").glob("claims_*"))  # the parent removed its claims
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


def test_a_worker_trains_only_what_it_claims_the_largest_variant_first(tmp_path, capsys):
    """Two variants over two folds, one task claimed beforehand (by "another worker"): this
    process trains the other three, adarl (more parameters) before backbone whatever the
    order asked for, and writes nothing for the task it did not claim."""
    from adarl_jax.config import load_config
    from adarl_jax.experiments import loso
    from adarl_jax.train.sharding import make_mesh
    from conftest import TINY_OVERRIDES

    manifest = make_corpus(tmp_path / "corpus")
    config = load_config("smoke", [*TINY_OVERRIDES, "data.corpus=csv", f"data.manifest={manifest}",
                                   "train.progress=False"])
    claims = Claims(tmp_path / "claims")
    claims.folder.mkdir()
    assert claims.take("adarl", 1)  # another worker has it
    results, _ = loso.run_job(config, tmp_path / "w", folds="0,1", variants=["backbone", "adarl"],
                              mesh=make_mesh(1), progress=True, claims=claims)
    assert [(r["variant"], r["fold"]) for r in results] == [("adarl", 0), ("backbone", 0),
                                                             ("backbone", 1)]
    out = capsys.readouterr().out
    assert out.index("[adarl] trainable parameters") < out.index("[backbone] trainable parameters")
    assert not list((tmp_path / "w" / "adarl").glob("fold_01_*/result.json"))
    assert all(not claims.take(v, k) for v in ("adarl", "backbone") for k in (0, 1))
