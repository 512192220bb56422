"""Issue 30's table, one test per row: each case a hostile but realistic user tried ends in a
correct result or a one-line error with a non-zero exit code (no traceback), never in a run
that goes on silently wrong. (The inference rows, short and 8 kHz clips and duplicate inputs
of `predict`, are tested with predict.)"""

import logging

import pytest

from conftest import TINY_OVERRIDES, make_corpus, tiny_config


def _cli(monkeypatch, capsys, argv):
    """(exit code, the one error line, stdout) of the command run in this process."""
    from adarl_jax import cli

    monkeypatch.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
    rc = cli.main(argv)
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("adarl-jax ")
              and ": error: " in line]
    assert "Traceback" not in out.err, out.err
    return rc, (errors[0] if len(errors) == 1 else out.err), out.out


def _train_argv(manifest, workdir, *extra):
    return ["train", "--config", "smoke", "--corpus", "csv", "--manifest", str(manifest),
            "--workdir", str(workdir), "--no-progress", "--workers", "1", *TINY_OVERRIDES,
            "--config.optim.epochs=1", *extra]


def _rewrite_manifest(manifest, change):
    """Applies change(fields) -> fields or None (drop the row) to every data row."""
    lines = manifest.read_text().splitlines()
    rows = [change(line.split(",")) for line in lines[1:]]
    manifest.write_text("\n".join([lines[0], *(",".join(r) for r in rows if r)]) + "\n")


# --- manifests


def test_speaker_ids_3_and_03_are_refused_naming_both_spellings(tmp_path, monkeypatch, capsys):
    manifest = make_corpus(tmp_path / "corpus", speakers=(("3", "M"), ("5", "F"), ("7", "M")))
    # the first two files of speaker 3 are written '03': one person, two spellings
    seen = []

    def respell(f):
        if f[1] == "3" and len(seen) < 2:
            seen.append(f[0])
            f[1] = "03"
        return f

    _rewrite_manifest(manifest, respell)
    rc, line, _ = _cli(monkeypatch, capsys, _train_argv(manifest, tmp_path / "w"))
    assert rc == 2
    assert "'3'" in line and "'03'" in line and str(manifest) in line, line
    assert not (tmp_path / "w" / "adarl").exists()


def test_a_class_absent_from_a_folds_training_speakers_is_refused_naming_fold_and_class(
        tmp_path, monkeypatch, capsys, caplog):
    manifest = make_corpus(tmp_path / "corpus")
    # neutral only for speaker s1: fold 0 (test speaker s1) trains without it
    _rewrite_manifest(manifest, lambda f: None if f[3] == "neutral" and f[1] != "s1" else f)
    rc, line, _ = _cli(monkeypatch, capsys, _train_argv(manifest, tmp_path / "w"))
    assert rc == 2
    assert "fold 0" in line and "'s1'" in line and "neutral" in line, line
    assert "fold 1" not in line and "--allow-missing-class" in line
    # --allow-missing-class (train.allow_missing_class) trains it, with a warning naming it,
    # and the fold's result and the report mark it
    import json

    w = tmp_path / "w"
    with caplog.at_level(logging.WARNING):
        rc, _, out = _cli(monkeypatch, capsys, _train_argv(manifest, w, "--folds", "0",
                                                           "--allow-missing-class"))
    assert rc == 0
    assert any("fold 0" in r.message and "neutral" in r.message for r in caplog.records)
    result = json.loads(next(w.glob("adarl/fold_00_*/result.json")).read_text())
    assert result["missing_classes"] == ["neutral"]
    assert "Fold 0 (s1) trained without neutral" in (w / "report.md").read_text()


def test_a_latin1_manifest_names_the_manifest_and_the_line(tmp_path, monkeypatch, capsys):
    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    rows = manifest.read_text().splitlines()
    rows[3] = rows[3].replace(",s1,", ",Jürgen,")
    manifest.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    rc, line, _ = _cli(monkeypatch, capsys, _train_argv(manifest, tmp_path / "w"))
    assert rc == 2
    assert str(manifest) in line and "line 4" in line and "UTF-8" in line, line


def test_speaker_key_ignores_case_spaces_and_leading_zeros_only():
    from adarl_jax.data.manifest import speaker_key

    assert speaker_key("03") == speaker_key("3") == speaker_key(" 3 ")
    assert speaker_key("Spk 07") == speaker_key("spk  7")
    assert speaker_key("30") != speaker_key("3") and speaker_key("s1") != speaker_key("s10")
    config = tiny_config()
    assert config.train.allow_missing_class is False


# --- model folders


@pytest.fixture
def model_folder(tmp_path):
    """A model folder of the tiny config with zero parameters (reading checks the files, not
    what the model learnt)."""
    import jax
    import numpy as np

    from adarl_jax.train.checkpoint import abstract_train_state
    from adarl_jax.inference.model_folder import FORMAT, FORMAT_VERSION, write_model_folder

    config = tiny_config()
    state = abstract_train_state(config)
    zeros = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype),
                         {"params": state.params, "batch_stats": state.batch_stats})
    folder = tmp_path / "model"
    write_model_folder(folder, config, zeros, {"format": FORMAT, "format_version": FORMAT_VERSION},
                       "# card\n")
    return folder


def _edit_meta(folder, change):
    import json

    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("removed", ["files", "params.npz", "sha256"])
def test_a_model_json_without_the_files_hash_is_an_error_not_a_skip(model_folder, removed,
                                                                      monkeypatch, capsys):
    from adarl_jax.inference.model_folder import ModelFolderError, read_model_folder

    read_model_folder(model_folder)  # whole, it reads
    _edit_meta(model_folder, {"files": lambda m: m.pop("files"),
                              "params.npz": lambda m: m["files"].pop("params.npz"),
                              "sha256": lambda m: m["files"]["params.npz"].pop("sha256")}[removed])
    _flip_a_byte(model_folder / "params.npz")
    unchecked = "config.json" if removed == "files" else "params.npz"  # the first file read
    with pytest.raises(ModelFolderError, match=f"records no size and SHA-256 of {unchecked}"):
        read_model_folder(model_folder)
    rc, line, _ = _cli(monkeypatch, capsys, ["predict", "--model", str(model_folder), "--out",
                                             str(model_folder.parent / "p.csv"),
                                             str(model_folder / "MODEL.md")])
    assert rc == 2 and str(model_folder / "model.json") in line and unchecked in line, line


@pytest.mark.parametrize("version,found", [(0, "is 0"), (None, "is null"), ("1", 'is "1"'),
                                           (True, "is true"), ("missing", "is missing")])
def test_format_version_messages_say_what_they_found(model_folder, version, found):
    from adarl_jax.inference.model_folder import ModelFolderError, read_meta

    def set_version(meta):
        if version == "missing":
            meta.pop("format_version")
        else:
            meta["format_version"] = version

    _edit_meta(model_folder, set_version)
    with pytest.raises(ModelFolderError) as info:
        read_meta(model_folder)
    text = str(info.value)
    assert f"format_version {found};" in text and "newer adarl-jax" not in text, text
    _edit_meta(model_folder, lambda m: m.update(format_version=7))
    with pytest.raises(ModelFolderError, match="format_version 7 is newer .* upgrade adarl-jax"):
        read_meta(model_folder)


# --- tune


SIX = (("s1", "M"), ("s2", "F"), ("s3", "M"), ("s4", "F"), ("s5", "M"), ("s6", "F"))
GRID = ("def get_grid():\n    return {'config': 'smoke', 'candidates': {\n"
        "        'a': [],\n        'b': [%r]}}\n")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A finished tune of two candidates on fold 0 (one epoch), through the command line."""
    from adarl_jax import cli

    root = tmp_path_factory.mktemp("tune")
    manifest = make_corpus(root / "corpus", per_class=1, speakers=SIX)
    grid = root / "grid.py"
    grid.write_text(GRID % "optim.lr=0.1")
    argv = ["tune", "--grid", str(grid), "--corpus", "csv", "--manifest", str(manifest),
            "--workdir", str(root / "W"), "--folds", "0", "--variant", "backbone",
            "--no-progress", *TINY_OVERRIDES, "--config.optim.epochs=1"]
    with pytest.MonkeyPatch.context() as m:
        m.setenv("ADARL_JAX_COMPILATION_CACHE", "off")
        assert cli.main(argv) == 0
    return root, argv


def _fold_files(workdir):
    """{path: bytes} of every file in the candidates' fold folders."""
    return {p: p.read_bytes() for p in sorted(workdir.glob("*/backbone/fold_*/**/*"))
            if p.is_file()}


def test_tune_rerun_with_a_changed_config_or_grid_is_refused_naming_the_fields(
        tuned, monkeypatch, capsys):
    root, argv = tuned
    w = root / "W"
    # each candidate's fold folder keeps the config it was trained with
    from adarl_jax.workdir.pinning import read_config

    for name, lr in (("a", None), ("b", 0.1)):
        fold_config = read_config(next((w / name / "backbone").glob("fold_00_*")) / "config.json")
        assert fold_config.model.variant == "backbone"
        assert lr is None or fold_config.optim.lr == lr
    before, configs = _fold_files(w), {n: (w / n / "config.json").read_bytes() for n in "ab"}
    rc, line, _ = _cli(monkeypatch, capsys, [*argv, "--config.frontend.log_floor=0.01"])
    assert rc == 2 and "frontend.log_floor" in line and str(w / "a" / "config.json") in line, line
    (root / "grid.py").write_text(GRID % "optim.lr=0.05")  # the grid edited
    rc, line, _ = _cli(monkeypatch, capsys, argv)
    assert rc == 2 and "optim.lr 0.1 -> 0.05" in line and str(w / "b" / "config.json") in line
    assert _fold_files(w) == before
    assert {n: (w / n / "config.json").read_bytes() for n in "ab"} == configs
    # --force-new-config moves what b's old config trained aside and trains b afresh
    rc, _, out = _cli(monkeypatch, capsys, [*argv, "--force-new-config"])
    assert rc == 0 and "--force-new-config" in out
    assert list(w.glob("b/superseded-*/backbone/fold_00_*/result.json"))
    assert read_config(w / "b" / "config.json").optim.lr == 0.05
    assert read_config(next((w / "b" / "backbone").glob("fold_00_*")) / "config.json").optim.lr == 0.05
    assert {p: d for p, d in _fold_files(w).items() if "/a/" in str(p)} == {
        p: d for p, d in before.items() if "/a/" in str(p)}  # a's fold stood: resumed, not retrained
    (root / "grid.py").write_text(GRID % "optim.lr=0.1")
    assert _cli(monkeypatch, capsys, [*argv, "--force-new-config"])[0] == 0  # back, for others


def test_a_second_tune_into_a_busy_workdir_is_refused_before_training(tuned, monkeypatch, capsys):
    import subprocess
    import sys

    root, argv = tuned
    w = root / "W"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from adarl_jax.workdir.locks import FoldLocks; "
         "FoldLocks(sys.argv[1], [0], command='other tune').acquire(); print('held', flush=True);"
         " sys.stdin.read()", str(w / "b")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _fold_files(w)
        rc, line, _ = _cli(monkeypatch, capsys, argv)
        assert rc == 5 and f"pid {holder.pid}" in line and "other tune" in line, line
        assert _fold_files(w) == before
        assert not (w / "a" / ".locks" / "fold_00.lock").exists()  # taken all or none
    finally:
        holder.kill()
        holder.wait()


# --- train --final


def _hold(lock_code: str, path):
    """A process holding a lock (`lock_code` evaluated with `p` the path) until killed."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from adarl_jax.workdir.locks import "
         f"FoldLocks, FolderLock; p = Path(sys.argv[1]); {lock_code}.acquire(); "
         "print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_train_final_into_one_model_folder_is_refused_before_training(tmp_path):
    from adarl_jax.cli.errors import EXIT_LOCKED, describe
    from adarl_jax.experiments.final_model import train_final
    from adarl_jax.workdir.locks import WorkdirLockedError
    from adarl_jax.inference.model_folder import staging_dir

    out = tmp_path / "W" / "final" / "adarl"
    holder = _hold("FolderLock(p, command='adarl-jax train --final')", out)
    try:
        with pytest.raises(WorkdirLockedError) as info:
            train_final(tiny_config(), tmp_path / "W", out, progress=False)
        code, message = describe(info.value)
        assert code == EXIT_LOCKED and str(out) in message and f"pid {holder.pid}" in message
        assert not staging_dir(out).exists() and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over (the run then stops at the missing
    # LOSO run, a usage error), and released: nothing is left beside the folder
    with pytest.raises(ValueError, match="has not finished"):
        train_final(*_a_pinned_workdir(tmp_path / "W"), out, progress=False)
    assert sorted(p.name for p in out.parent.iterdir()) == []


def _a_pinned_workdir(workdir):
    from adarl_jax.workdir.pinning import write_workdir_config

    manifest = make_corpus(workdir.parent / "corpus", per_class=1)
    config = tiny_config()
    config.data.corpus, config.data.manifest = "csv", str(manifest)
    workdir.mkdir(parents=True, exist_ok=True)
    write_workdir_config(config, workdir)
    return config, workdir


def test_a_stale_partial_beside_a_complete_model_is_cleaned(model_folder, caplog):
    from adarl_jax.experiments.final_model import train_final
    from adarl_jax.inference.model_folder import staging_dir

    staging = staging_dir(model_folder)
    (staging / "train").mkdir(parents=True)
    (staging / "train" / "plan.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a complete model"):
        train_final(tiny_config(), model_folder.parent / "W", model_folder, progress=False)
    assert not staging.exists() and (model_folder / "model.json").is_file()
    assert "removing what an earlier run left" in caplog.text


# --- SIGTERM and output errors


def test_sigterm_during_train_is_one_line_exit_143_and_releases_the_locks(
        tmp_path, monkeypatch, capsys):
    import os
    import signal

    from adarl_jax.train import trainer
    from adarl_jax.cli.errors import EXIT_TERMINATED

    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    w = tmp_path / "w"
    real = trainer.train_epochs

    def terminated_while_training(*args, **kw):  # the signal arrives with the fold under way
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kw)

    monkeypatch.setattr(trainer, "train_epochs", terminated_while_training)
    before = signal.getsignal(signal.SIGTERM)
    rc, err, _ = _cli(monkeypatch, capsys, _train_argv(manifest, w, "--folds", "0"))
    assert rc == EXIT_TERMINATED == 143
    lines = [line for line in err.splitlines() if line.startswith("adarl-jax train:")]
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "resume" in lines[0], err
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the command's only
    assert list((w / ".locks").glob("*.lock")) == [] and not list(w.glob("adarl/fold_*/result.json"))
    monkeypatch.setattr(trainer, "train_epochs", real)
    rc, _, _ = _cli(monkeypatch, capsys, _train_argv(manifest, w, "--folds", "0"))
    assert rc == 0 and list(w.glob("adarl/fold_00_*/result.json"))  # the rerun finishes it


def test_a_full_disk_while_writing_embeddings_names_the_file_and_the_free_space(
        tmp_path, monkeypatch):
    import numpy as np

    from adarl_jax.inference import predict_io
    from adarl_jax.cli.errors import EXIT_IO, describe

    def short_write(f, array, allow_pickle=False):  # what numpy raises when the disk fills
        raise OSError("8000 requested and 992 written")

    monkeypatch.setattr(np, "save", short_write)
    out = tmp_path / "emb.npy"
    records = [{"path": "a.wav", "embedding": [0.5] * 8, "error": None}]
    with pytest.raises(OSError) as info:
        predict_io.write_embeddings(records, out, 8)
    code, message = describe(info.value, str(tmp_path / "preds.csv"))
    assert code == EXIT_IO
    assert message.startswith(f"{out}: no space left on the device (") and "MB free" in message
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
    # any atomic write whose file object fails (no file name in the error) names its file
    import errno

    from adarl_jax.workdir.files import write_atomic

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        write_atomic(tmp_path / "preds.csv", "w", full)
    code, message = describe(info.value, str(tmp_path / "elsewhere"))
    assert code == EXIT_IO and message.startswith(f"{tmp_path / 'preds.csv'}: no space left")
    assert "MB free on its disk" in message


# --- the data fingerprint


def test_other_recordings_laid_out_like_the_corpus_are_refused_naming_what_differs(
        tmp_path, monkeypatch, capsys):
    import json
    import shutil

    a = make_corpus(tmp_path / "a", per_class=1)
    b = make_corpus(tmp_path / "b", per_class=1, seconds=(1.6, 3.3))  # same names, other takes
    w = tmp_path / "w"
    assert _cli(monkeypatch, capsys, _train_argv(a, w, "--folds", "0"))[0] == 0
    trained = {p: p.read_bytes() for p in w.glob("adarl/fold_00_*/result.json")}
    fingerprint = json.loads((w / "data.json").read_text())
    assert len(fingerprint["files"]) == 16 and fingerprint["sample"]
    rc, line, _ = _cli(monkeypatch, capsys, _train_argv(b, w, "--folds", "0"))
    assert rc == 2 and str(w / "data.json") in line and "16 file(s) differ in size" in line, line
    assert "s1_anger_0.wav" in line and str(tmp_path / "b") in line
    assert {p: p.read_bytes() for p in trained} == trained
    # the same recordings copied elsewhere (new modification times) are the same data
    shutil.copytree(tmp_path / "a", tmp_path / "moved")
    prepare = ["prepare", "--config", "smoke", "--corpus", "csv", "--workdir", str(w),
               "--no-progress", *TINY_OVERRIDES]
    assert _cli(monkeypatch, capsys, [*prepare, "--manifest", str(tmp_path / "moved" / "manifest.csv")])[0] == 0
    # a file of the same size with other contents
    first = sorted((tmp_path / "moved" / "wav").iterdir())[0]
    data = bytearray(first.read_bytes())
    data[100:200] = bytes(100)
    first.write_bytes(bytes(data))
    rc, line, _ = _cli(monkeypatch, capsys, [*prepare, "--manifest", str(tmp_path / "moved" / "manifest.csv")])
    assert rc == 2 and "other contents" in line and first.name in line, line
    # --force-new-config: what the old recordings trained moves aside, the new data trains
    rc, _, out = _cli(monkeypatch, capsys, _train_argv(b, w, "--folds", "0", "--force-new-config"))
    assert rc == 0 and "--force-new-config" in out
    assert [p.read_bytes() for p in w.glob("superseded-*/adarl/fold_00_*/result.json")] == list(
        trained.values())
    assert json.loads((w / "data.json").read_text())["root"] == str(tmp_path / "b" / "wav")


def test_sigterm_waits_for_a_checkpoint_being_written():
    import os
    import signal

    from adarl_jax.termination import Terminated, on_sigterm, uninterrupted

    done = []
    with pytest.raises(Terminated, match="SIGTERM"):
        with on_sigterm():
            with uninterrupted():  # a save under way: held
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("saved")
            done.append("not reached")
    assert done == ["saved"]
    with on_sigterm():  # a new section: nothing pending from before
        with uninterrupted():
            done.append("again")
    assert done == ["saved", "again"]
