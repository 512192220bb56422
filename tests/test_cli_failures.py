"""The command line's loud failures: divergence stops with exit 3, no subcommand prints the
help, --version names the package."""

import json
import subprocess
import sys

from conftest import REPO, TINY_OVERRIDES, make_corpus


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "adarl_jax.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_divergence_exits_3_and_keeps_finished_folds(tmp_path):
    manifest = make_corpus(tmp_path / "corpus")
    common = ["--config", "smoke", "--corpus", "csv", "--manifest", str(manifest), "--workdir",
              str(tmp_path / "w"), "--no-progress", "--workers", "1", *TINY_OVERRIDES,
              "--config.optim.epochs=1"]
    ok = _run("train", *common, "--folds", "0")
    assert ok.returncode == 0, ok.stderr
    finished = json.loads(next((tmp_path / "w").glob("adarl/fold_00_*/result.json")).read_text())
    bad = _run("train", *common, "--folds", "0,1", "--config.optim.lr=1e30")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "diverged" in bad.stderr and "fold 1" in bad.stderr and "optim.lr" in bad.stderr
    assert not list((tmp_path / "w").glob("adarl/fold_01_*/result.json"))
    again = json.loads(next((tmp_path / "w").glob("adarl/fold_00_*/result.json")).read_text())
    assert again == finished


def test_no_subcommand_prints_help_and_version_names_the_package():
    bare = _run()
    assert bare.returncode == 2 and "usage: adarl-jax" in bare.stdout and "tune" in bare.stdout
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("adarl-jax ")
