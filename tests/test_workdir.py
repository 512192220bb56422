"""workdir.py: fold folder names round-trip, fold folders are found, only finished folds collected."""

import json
from types import SimpleNamespace

from adarl_jax.workdir.layout import collect, fold_dir, fold_dirs, fold_name, parse_fold_name, result_path


def test_names_round_trip():
    for index, speaker in [(0, "03"), (7, "Ses01F"), (12, "spk_with_underscores"), (123, "a")]:
        assert parse_fold_name(fold_name(index, speaker)) == (index, speaker)
    assert fold_name(3, "s") == "fold_03_s"
    for bad in ["fold_03", "fold__s", "fold_x_s", "run_03_s", "fold_03_"]:
        assert parse_fold_name(bad) is None


def test_fold_dir_layout(tmp_path):
    d = fold_dir(tmp_path, "adarl", SimpleNamespace(index=4, test_speaker="16"))
    assert d == tmp_path / "adarl" / "fold_04_16"
    assert result_path(d) == d / "result.json"


def _fold(workdir, variant, index, speaker, finished):
    d = fold_dir(workdir, variant, SimpleNamespace(index=index, test_speaker=speaker))
    d.mkdir(parents=True)
    if finished:
        result_path(d).write_text(json.dumps({"variant": variant, "fold": index, "test_speaker": speaker}))
    return d


def test_collect_finds_finished_folds_only(tmp_path):
    b1 = _fold(tmp_path, "backbone", 1, "b", True)
    b0 = _fold(tmp_path, "backbone", 0, "a", True)
    _fold(tmp_path, "backbone", 2, "c", False)  # still training
    _fold(tmp_path, "adarl", 0, "a", False)
    (tmp_path / "backbone" / "fold_stray.txt").write_text("not a fold")  # neither a folder nor a name
    out = collect(tmp_path)
    assert set(out) == {"backbone"}
    assert [(r["fold"], r["test_speaker"]) for r in out["backbone"]] == [(0, "a"), (1, "b")]
    assert set(fold_dirs(tmp_path / "backbone")) == {0, 1, 2}
    assert fold_dirs(tmp_path / "backbone")[0] == b0 and fold_dirs(tmp_path / "backbone")[1] == b1
    assert collect(tmp_path / "missing") == {}
