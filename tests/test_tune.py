"""tune.py: nested recipe selection. Winners come from validation UA only; the outer score is
the winners' test utterances pooled; an end-to-end run on a synthetic corpus agrees with both."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from adarl_jax import metrics as M
from adarl_jax.experiments.tune import candidate_configs, choose_winners, load_grid, run_tune, summarise

from conftest import make_corpus


def test_winner_is_the_best_validation_ua_and_ties_go_to_the_earlier_candidate():
    val = {"a": {0: 0.5, 1: 0.7, 2: float("nan"), 3: 0.4},
           "b": {0: 0.6, 1: 0.7, 2: 0.1, 3: float("nan")},
           "c": {0: 0.55, 1: 0.69, 2: 0.2, 3: float("nan")}}
    assert choose_winners(val, ["a", "b", "c"]) == {0: "b", 1: "a", 2: "c", 3: "a"}
    assert choose_winners(val, ["b", "a", "c"])[1] == "b"


def _rows(pairs, fold):
    """Utterance rows with a one-hot prediction: (true, predicted) pairs."""
    return [{"emotion": t, "gender": 0, "probs": list(np.eye(3)[p]), "utterance": fold * 100 + i}
            for i, (t, p) in enumerate(pairs)]


def _result(fold, val_ua, pairs):
    rows = _rows(pairs, fold)
    return {"best_val_ua": val_ua, "test_speaker": f"s{fold}", "val_speakers": ["v1", "v2"],
            "utterances": rows, "test": M.score_utterances(rows, 3)}


def test_outer_score_pools_only_the_winners_test_utterances():
    # fold 0: 'good' wins on validation but is worse on test; fold 1: 'bad' wins on validation
    results = {
        "good": {0: _result(0, 0.9, [(0, 1), (1, 1), (2, 2)]), 1: _result(1, 0.2, [(0, 0), (1, 1), (2, 2)])},
        "bad": {0: _result(0, 0.8, [(0, 0), (1, 1), (2, 2)]), 1: _result(1, 0.3, [(0, 2), (1, 2), (2, 2)])},
    }
    rec = summarise(results, ("x", "y", "z"), ["good", "bad"])
    assert [f["winner"] for f in rec["folds"]] == ["good", "bad"]
    # winners' test utterances: (0,1) (1,1) (2,2) from fold 0 and (0,2) (1,2) (2,2) from fold 1
    assert rec["outer"]["wa"] == pytest.approx(3 / 6)
    assert rec["outer"]["recall"] == [0.0, 0.5, 1.0]
    assert rec["outer"]["ua"] == pytest.approx(0.5)
    assert rec["outer"]["fold_mean_ua"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert rec["wins"] == {"good": 1, "bad": 1}
    # each candidate alone, for the record
    assert rec["candidate_test"]["bad"]["wa"] == pytest.approx(4 / 6)
    assert rec["candidate_test"]["good"]["mean_val_ua"] == pytest.approx(0.55)


def test_grid_files_are_checked(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_grid():\n    return {'config': 'smoke', 'candidates': {'a b': []}}\n")
    with pytest.raises(ValueError, match="candidate name"):
        load_grid(str(bad))
    with pytest.raises(FileNotFoundError, match="no_such_grid"):
        load_grid("no_such_grid")
    split = tmp_path / "split.py"
    split.write_text("def get_grid():\n    return {'config': 'smoke', 'candidates': "
                     "{'a': [], 'b': ['train.split_seed=3']}}\n")
    with pytest.raises(ValueError, match="share"):
        candidate_configs(load_grid(str(split)))
    corpus = tmp_path / "corpus.py"  # another corpus's data: refused; another cut of it: not
    corpus.write_text("def get_grid():\n    return {'config': 'smoke', 'candidates': "
                      "{'a': [], 'b': ['data.corpus=\"ravdess\"']}}\n")
    with pytest.raises(ValueError, match="share"):
        candidate_configs(load_grid(str(corpus)))
    configs = candidate_configs(load_grid("utterance"))
    assert configs["overlap"].data.segment_hop_s == 1.0 and configs["adarl"].data.segment_hop_s == 0
    grid = load_grid("recipe")  # the repository's grid loads and every candidate validates
    configs = candidate_configs(grid)
    assert list(configs) == list(grid["candidates"]) and all(
        c.train.selection == "val" for c in configs.values())
    with pytest.raises(ValueError, match="not in the grid"):
        candidate_configs(grid, only=["nope"])


def test_tune_end_to_end_on_a_synthetic_corpus(tmp_path):
    manifest = make_corpus(tmp_path / "corpus", speakers=(("s1", "M"), ("s2", "F"), ("s3", "M"),
                                                          ("s4", "F"), ("s5", "M"), ("s6", "F")))
    grid_file = tmp_path / "grid.py"
    grid_file.write_text(
        "def get_grid():\n    return {'config': 'smoke', 'candidates': {\n"
        "        'sgd': [],\n"
        "        'adamw_spk': ['optim.optimizer=adamw', 'optim.lr=0.003', 'frontend.normalize=speaker']}}\n")
    overrides = ["data.corpus=csv", f"data.manifest={manifest}", "data.max_utterances=0",
                 "model.variant=backbone", "optim.epochs=2", "train.progress=False"]
    rec = run_tune(load_grid(str(grid_file)), tmp_path / "w", overrides, folds="0,2", progress=False)
    on_disk = json.loads((tmp_path / "w" / "tune.json").read_text())
    assert on_disk["outer"]["ua"] == pytest.approx(rec["outer"]["ua"]) and on_disk["folds"] == rec["folds"]
    assert [f["fold"] for f in rec["folds"]] == [0, 2]
    rows = []
    for f in rec["folds"]:
        vals = f["val_ua"]
        assert vals[f["winner"]] == max(vals.values())
        assert f["winner"] == next(n for n in ("sgd", "adamw_spk") if vals[n] == max(vals.values()))
        speaker = f["test_speaker"]
        res = json.loads(next((tmp_path / "w" / f["winner"] / "backbone").glob(
            f"fold_{f['fold']:02d}_{speaker}")).joinpath("result.json").read_text())
        assert res["test"]["ua"] == f["test"]["ua"] and res["best_val_ua"] == vals[f["winner"]]
        assert speaker not in res["train_speakers"] and speaker not in res["val_speakers"]
        rows += res["utterances"]
    assert rec["outer"]["ua"] == pytest.approx(M.score_utterances(rows, 4)["ua"])
    assert math.isfinite(rec["outer"]["wa"])
    assert "winner" in (tmp_path / "w" / "tune.md").read_text()
    # the candidates share one fold split: the same validation speakers per fold
    for f in rec["folds"]:
        vs = {n: json.loads(next((tmp_path / "w" / n / "backbone").glob(f"fold_{f['fold']:02d}_*"))
                            .joinpath("result.json").read_text())["val_speakers"] for n in ("sgd", "adamw_spk")}
        assert vs["sgd"] == vs["adamw_spk"]


def test_tune_keeps_an_external_variant_file_in_the_workdir(tmp_path):
    import shutil

    from conftest import REPO

    manifest = make_corpus(tmp_path / "corpus", speakers=(("s1", "M"), ("s2", "F"), ("s3", "M"),
                                                          ("s4", "F"), ("s5", "M"), ("s6", "F")))
    original = tmp_path / "mine" / "se_attention.py"
    original.parent.mkdir()
    shutil.copy(REPO / "examples" / "se_attention.py", original)
    grid_file = tmp_path / "grid.py"
    grid_file.write_text("def get_grid():\n    return {'config': 'smoke', 'candidates': {'se': []}}\n")
    overrides = ["data.corpus=csv", f"data.manifest={manifest}", "data.max_utterances=0",
                 f"model.variant_file={original}", "model.variant=se_attention", "optim.epochs=1",
                 "train.progress=False"]
    run_tune(load_grid(str(grid_file)), tmp_path / "w", overrides, folds="0", progress=False)
    saved = json.loads((tmp_path / "w" / "se" / "config.json").read_text())["model"]
    kept = Path(saved["variant_file"])
    assert kept.is_relative_to((tmp_path / "w").resolve()) and kept.read_bytes() == original.read_bytes()
    assert len(saved["variant_sha256"]) == 64
