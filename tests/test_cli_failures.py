"""The command line's loud failures: divergence stops with exit 3, no subcommand prints the
help, --version names the package, errors are one line (a traceback with --debug) with an exit
code per kind, a run's config.json is a config."""

import errno
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from conftest import REPO, TINY_OVERRIDES, make_corpus, tiny_input_shape


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "adarl_jax.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_divergence_exits_3_and_keeps_finished_folds(tmp_path):
    manifest = make_corpus(tmp_path / "corpus")
    w = tmp_path / "w"
    common = ["--config", "smoke", "--corpus", "csv", "--manifest", str(manifest), "--workdir",
              str(w), "--no-progress", "--workers", "1", *TINY_OVERRIDES, "--config.optim.epochs=1"]
    ok = _run("train", *common, "--folds", "0")
    assert ok.returncode == 0, ok.stderr
    finished = json.loads(next(w.glob("adarl/fold_00_*/result.json")).read_text())
    refused = _run("train", *common, "--folds", "1", "--config.optim.lr=1e30")
    assert refused.returncode == 2 and "optim.lr" in _one_line_error(refused.stderr, "train")
    bad = _run("train", *common, "--folds", "1", "--config.optim.lr=1e30", "--force-new-config")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    line = _one_line_error(bad.stderr, "train")
    assert "diverged" in line and "fold 1" in line and "optim.lr" in line
    assert not list(w.glob("adarl/fold_01_*/result.json"))
    kept = json.loads(next(w.glob("superseded-*/adarl/fold_00_*/result.json")).read_text())
    assert kept == finished


def test_no_subcommand_prints_help_and_version_names_the_package():
    bare = _run()
    assert bare.returncode == 2 and "usage: adarl-jax" in bare.stderr and "tune" in bare.stderr
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("adarl-jax ")


def _one_line_error(stderr: str, command: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(f"adarl-jax {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_one_speaker_corpus_says_loso_needs_two_speakers(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", speakers=(("solo", "F"),))
    res = _run("train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
               "--workdir", str(tmp_path / "w"), "--no-progress", "--workers", "1",
               *TINY_OVERRIDES)
    assert res.returncode == 2
    line = _one_line_error(res.stderr, "train")
    assert "LOSO needs at least 2 speakers" in line and "'solo'" in line
    assert str(tmp_path / "corpus") in line


def _in_process(monkeypatch, capsys, argv):
    from adarl_jax.cli import commands as cli

    monkeypatch.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
    rc = cli.main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only file system"),
                                        (errno.ENOSPC, "no space left on the device"),
                                        (errno.EACCES, "permission denied")])
def test_unwritable_workdir_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys, code, words):
    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    workdir = tmp_path / "w"

    def refuse(suffix=None, prefix=None, dir=None, text=False):
        name = os.path.join(dir, f"{prefix}k3x9q2ab{suffix}")
        raise OSError(code, os.strerror(code), name)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    rc, err = _in_process(monkeypatch, capsys, [
        "prepare", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
        "--workdir", str(workdir), "--no-progress", *TINY_OVERRIDES])
    assert rc == 4
    line = _one_line_error(err, "prepare")
    # the first file a run writes: the data fingerprint (adarl_jax.workdir.fingerprint)
    assert words in line and str(workdir / "data.json") in line and "k3x9q2ab" not in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_workdir_really(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    workdir = tmp_path / "w"
    workdir.mkdir()
    workdir.chmod(0o555)
    try:
        res = _run("prepare", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
                   "--workdir", str(workdir), "--no-progress", *TINY_OVERRIDES)
    finally:
        workdir.chmod(0o755)
    assert res.returncode == 4
    assert str(workdir) in _one_line_error(res.stderr, "prepare")


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path):
    from adarl_jax.cli import commands as cli

    def boom(args, overrides):
        raise RuntimeError("a library's long complaint\nwith\nmany lines")

    monkeypatch.setattr(cli, "cmd_report", boom)
    rc, err = _in_process(monkeypatch, capsys, ["report", str(tmp_path)])
    assert rc == 1
    line = _one_line_error(err, "report")
    assert "RuntimeError: a library's long complaint [2 more line(s)]" in line
    assert "--debug" in line
    for argv in (["--debug", "report", str(tmp_path)], ["report", str(tmp_path), "--debug"]):
        with pytest.raises(RuntimeError, match="long complaint"):
            cli.main(argv)
    debug = _run("--debug", "predict", "--checkpoint", str(tmp_path / "nowhere"), "x.wav",
                 "--out", str(tmp_path / "p.csv"))
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "FileNotFoundError: checkpoint" in debug.stderr


def test_error_table_maps_named_classes_that_exist(monkeypatch):
    from adarl_jax.train import checkpoint
    from adarl_jax.experiments import loso
    from adarl_jax.cli.errors import describe

    class ConfigMismatchError(ValueError):
        pass

    class CheckpointCorruptError(RuntimeError):
        pass

    monkeypatch.setattr(loso, "ConfigMismatchError", ConfigMismatchError, raising=False)
    monkeypatch.setattr(checkpoint, "CheckpointCorruptError", CheckpointCorruptError, raising=False)
    from adarl_jax.workdir.locks import WorkdirLockedError

    assert describe(WorkdirLockedError("fold 3 is held by pid 12 on h")) == (
        5, "fold 3 is held by pid 12 on h")
    assert describe(ConfigMismatchError("frontend.n_bins differs")) == (2, "frontend.n_bins differs")
    assert describe(CheckpointCorruptError("fold 1 epoch 2: bad file")) == (6, "fold 1 epoch 2: bad file")
    assert describe(FloatingPointError("diverged"))[0] == 3
    assert describe(KeyError("no config field 'x'")) == (2, "no config field 'x'")
    assert describe(OSError(errno.ENOSPC, "No space left on device"), "/runs/w") == (
        4, "/runs/w: no space left on the device: free some space or choose a folder on another disk")


def test_a_runs_config_json_is_accepted_by_features_and_prepare(tmp_path):
    from adarl_jax.config import load_config, to_json

    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    saved = tmp_path / "run" / "config.json"
    saved.parent.mkdir()
    saved.write_text(to_json(load_config("smoke", TINY_OVERRIDES)))
    wav = str(next((tmp_path / "corpus" / "wav").glob("*.wav")))
    by_json = _run("features", "--config", str(saved), wav, "--out", str(tmp_path / "a.npy"))
    by_name = _run("features", "--config", "smoke", *TINY_OVERRIDES, wav, "--out",
                   str(tmp_path / "b.npy"))
    assert by_json.returncode == 0 and by_name.returncode == 0, by_json.stderr + by_name.stderr
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape[1:] == tiny_input_shape() and np.array_equal(a, b)
    prep = _run("prepare", "--config", str(saved), "--corpus", "csv", "--manifest", str(manifest),
                "--workdir", str(tmp_path / "w"), "--no-progress")
    assert prep.returncode == 0, prep.stderr
    summary = json.loads(prep.stdout)
    assert summary["n_utterances"] == 16 and summary["feature_shape"][1:] == list(tiny_input_shape())
