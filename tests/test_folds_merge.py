"""Folds spread over jobs: two `--folds` jobs into one workdir (as two SLURM array tasks, run at
the same time through launch/folds_array.sh), then `adarl-jax report`, give the same results.json
as one job that trains both folds."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY_OVERRIDES, cli_env, make_corpus, tiny_train_args


def test_separate_fold_jobs_merge_into_the_same_table(tmp_path):
    env = cli_env(tmp_path)
    if shutil.which("adarl-jax", path=env["PATH"]) is None:
        pytest.skip("the adarl-jax command is not installed (pip install -e .)")
    manifest = make_corpus(tmp_path / "corpus")
    split, joint = tmp_path / "split", tmp_path / "joint"

    tasks = [subprocess.Popen(["bash", str(REPO / "launch" / "folds_array.sh"), "train", "smoke",
                               str(split), *tiny_train_args(manifest)],
                              env=cli_env(tmp_path, SLURM_ARRAY_TASK_ID=str(k)), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k in (0, 1)]
    outputs = [t.communicate(timeout=400)[0] for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0], "\n".join(outputs)
    subprocess.run(["adarl-jax", "report", str(split)], env=env, check=True, capture_output=True)

    # one process, as the array tasks are (tests/test_workers.py compares --workers N with it)
    subprocess.run(["adarl-jax", "train", "--config", "smoke", "--workdir", str(joint),
                    "--folds", "0,1", "--workers", "1", "--no-progress", *tiny_train_args(manifest)],
                   env=env, cwd=tmp_path, check=True, capture_output=True)

    merged = json.loads((split / "results.json").read_text())
    together = json.loads((joint / "results.json").read_text())
    assert list(merged) == list(together) == ["adarl"]
    m, t = merged["adarl"], together["adarl"]
    assert [f["fold"] for f in m["folds"]] == [f["fold"] for f in t["folds"]] == [0, 1]
    for fm, ft in zip(m["folds"], t["folds"]):
        assert (fm["speaker"], fm["n"], fm["wa"], fm["ua"]) == (ft["speaker"], ft["n"], ft["wa"], ft["ua"])
    for key in ("wa_pooled", "ua_pooled", "wa_fold_mean", "ua_fold_mean", "confusion",
                "per_class_recall", "n_utterances"):
        assert m[key] == t[key], key
    assert merged == together
    for fold in sorted(split.glob("adarl/fold_*")):
        a = json.loads((fold / "result.json").read_text())
        b = json.loads((joint / "adarl" / fold.name / "result.json").read_text())
        assert a["utterances"] == b["utterances"]
