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
    # --allow-missing-class (train.allow_missing_class) trains it, with a warning naming it
    from adarl_jax.cli import config_from_argv
    from adarl_jax.corpora import load_corpus
    from adarl_jax.folds import config_folds

    config = config_from_argv(_train_argv(manifest, tmp_path / "w", "--allow-missing-class"))
    assert config.train.allow_missing_class is True
    utterances = load_corpus("csv", "", str(manifest))
    with caplog.at_level(logging.WARNING):
        folds = config_folds(config, utterances, "0,1")
    assert [f.index for f in folds] == [0, 1]
    assert any("fold 0" in r.message and "neutral" in r.message for r in caplog.records)


def test_a_latin1_manifest_names_the_manifest_and_the_line(tmp_path, monkeypatch, capsys):
    manifest = make_corpus(tmp_path / "corpus", per_class=1)
    rows = manifest.read_text().splitlines()
    rows[3] = rows[3].replace(",s1,", ",Jürgen,")
    manifest.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    rc, line, _ = _cli(monkeypatch, capsys, _train_argv(manifest, tmp_path / "w"))
    assert rc == 2
    assert str(manifest) in line and "line 4" in line and "UTF-8" in line, line


def test_speaker_key_ignores_case_spaces_and_leading_zeros_only():
    from adarl_jax.manifest import speaker_key

    assert speaker_key("03") == speaker_key("3") == speaker_key(" 3 ")
    assert speaker_key("Spk 07") == speaker_key("spk  7")
    assert speaker_key("30") != speaker_key("3") and speaker_key("s1") != speaker_key("s10")
    config = tiny_config()
    assert config.train.allow_missing_class is False
