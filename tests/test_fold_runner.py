"""loso.run_folds (the one fold loop: skip, rerun, write, progress) and fold_record (one
result header for the neural variants and the openSMILE baselines). No training."""

import json
from types import SimpleNamespace

import numpy as np

from adarl_jax.baselines import opensmile as B
from adarl_jax.train import trainer
from adarl_jax.workdir.fold_record import HEADER
from adarl_jax.data.folds import Fold
from adarl_jax.experiments.loso import run_folds, fold_scores
from adarl_jax.data.utterances import Utterance
from adarl_jax.workdir.layout import fold_dir, result_path

from conftest import tiny_config


def _folds(n):
    return [SimpleNamespace(index=k, test_speaker=f"s{k}") for k in range(n)]


def _result(fold, **extra):
    return {"fold": fold.index, "test": {"wa": 0.5, "ua": 0.25}, "train_time_s": 3.0, **extra}


class CountingRun:
    def __init__(self):
        self.calls = []

    def __call__(self, fold, out_dir):
        self.calls.append((fold.index, out_dir))
        return _result(fold, fresh=True)


def _finish(workdir, variant, fold, **extra):
    path = result_path(fold_dir(workdir, variant, fold))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_result(fold, **extra)))


def test_a_finished_fold_is_read_back_and_the_others_run_and_are_written(tmp_path, capsys):
    folds = _folds(3)
    _finish(tmp_path, "v", folds[1], stored=True)
    run = CountingRun()
    out = run_folds(tmp_path, "v", folds, run)
    assert [k for k, _ in run.calls] == [0, 2]
    assert run.calls[0][1] == tmp_path / "v" / "fold_00_s0"
    assert [r["fold"] for r in out] == [0, 1, 2]
    assert out[1].get("stored") and "fresh" not in out[1]
    written = json.loads(result_path(fold_dir(tmp_path, "v", folds[2])).read_text())
    assert written == out[2]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"[v] fold {k} (s{k}): WA 0.500 UA 0.250 (3 s)" for k in range(3)]


def test_an_outdated_fold_runs_again_with_a_warning(tmp_path, caplog):
    folds = _folds(2)
    _finish(tmp_path, "v", folds[0], rule="old")
    _finish(tmp_path, "v", folds[1], rule="new")
    run = CountingRun()
    out = run_folds(tmp_path, "v", folds, run, progress=False,
                    outdated=lambda done: None if done["rule"] == "new" else "fitted by the old rule")
    assert [k for k, _ in run.calls] == [0]
    assert out[0].get("fresh") and out[1]["rule"] == "new"
    assert "v fold 0 (s0): fitted by the old rule" in caplog.text


def test_check_runs_for_every_fold_and_write_false_writes_nothing(tmp_path, capsys):
    folds = _folds(2)
    _finish(tmp_path, "v", folds[0])
    checked = []
    run_folds(tmp_path, "v", folds, CountingRun(), check=checked.append, write=False,
              describe=lambda r: fold_scores(r) + f" C 1 ({r['train_time_s']:.1f} s)")
    assert checked == [fold_dir(tmp_path, "v", f) for f in folds]
    assert not result_path(fold_dir(tmp_path, "v", folds[1])).exists()
    assert capsys.readouterr().out.splitlines()[1] == "[v] fold 1 (s1): WA 0.500 UA 0.250 C 1 (3.0 s)"


def test_a_label_and_a_line_of_its_own_replace_the_variant_and_the_scores(tmp_path, capsys):
    folds = _folds(1)
    run_folds(tmp_path / "cand", "v", folds, CountingRun(), label="tune cand",
              describe=lambda r: f"UA only {r['test']['ua']:.3f}")
    assert capsys.readouterr().out.splitlines() == ["[tune cand] fold 0 (s0): UA only 0.250"]
    assert result_path(fold_dir(tmp_path / "cand", "v", folds[0])).exists()


def _synthetic_fold():
    train, val, test = np.arange(0, 8), np.arange(8, 10), np.arange(10, 12)
    return Fold(index=2, test_speaker="c", train_speakers=("a", "d"), val_speakers=("b",),
                train=train, val=val, test=test)


def _trainer_record(config, fold, monkeypatch):
    monkeypatch.setattr(trainer, "utterance_predictions", lambda *a: {"utterances": []})
    monkeypatch.setattr(trainer, "score_utterances", lambda rows, k: {"wa": 0.0, "ua": 0.0})
    trained = trainer.Trained(state=None, best={"epoch": 1, "val_ua": 0.5}, epochs=2, t0=0.0)
    state = SimpleNamespace(step=np.int32(7), eval_variables=None)
    return trainer.result_record(config, None, fold, SimpleNamespace(evaluator=None), trained,
                                 state, 1)


def _baseline_record(config, fold):
    utts = [Utterance(path=f"/{i}.wav", speaker=s, domain="MF"[i % 2],
                      emotion=config.data.classes[i % 4], corpus="csv")
            for i, s in enumerate("aaaadddd" "bb" "cc")]
    rng = np.random.default_rng(0)
    table = B.FeatureTable(features=rng.normal(size=(12, 3)).astype(np.float32),
                           utterances=utts, skipped=[], extractor_id="fake")
    return B._fit_fold(config, table, fold, "opensmile_egemaps_svm", "egemaps", "fixed", 1.0,
                       False)[1]


def test_trainer_and_baseline_records_share_one_header(monkeypatch):
    config = tiny_config("adarl")
    fold = _synthetic_fold()
    cnn, svm = _trainer_record(config, fold, monkeypatch), _baseline_record(config, fold)
    assert list(cnn)[:len(HEADER)] == list(svm)[:len(HEADER)] == list(HEADER)
    assert list(cnn)[len(HEADER):] == ["test", "utterances", "val_utterances"]
    assert list(svm)[len(HEADER):] == ["baseline", "test", "utterances", "val_utterances"]
    same = ("fold", "test_speaker", "train_speakers", "val_speakers", "classes", "genders",
            "domains", "domain_column", "seed")
    assert {k: cnn[k] for k in same} == {k: svm[k] for k in same}
    assert cnn["train_speakers"] == ["a", "d"] and cnn["val_speakers"] == ["b"]
    assert (cnn["variant"], cnn["steps"], cnn["epochs"], cnn["selected_epoch"]) == ("adarl", 7, 2, 1)
    assert (svm["variant"], svm["steps"], svm["epochs"], svm["selection"]) == (
        "opensmile_egemaps_svm", None, None, "C by fixed")
    assert svm["test"]["n"] == 2 and len(svm["utterances"]) == 2


def test_a_dataset_serves_the_variants_that_read_the_same_data():
    from adarl_jax.data.reading import reads_same_data

    adarl, backbone = tiny_config("adarl"), tiny_config("backbone")
    assert reads_same_data(adarl, backbone) and reads_same_data(backbone, backbone)
    # read without the domain column, it may lack the domains a domain head needs
    assert not reads_same_data(backbone, adarl)
    other = tiny_config("adarl")
    other.frontend.n_bins = 21
    assert not reads_same_data(adarl, other)
    other = tiny_config("adarl")
    other.data.max_utterances = 5
    assert not reads_same_data(adarl, other)


def test_the_default_line_names_the_domain_column_with_its_accuracy(tmp_path, capsys):
    folds = _folds(2)
    path = result_path(fold_dir(tmp_path, "v", folds[0]))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**_result(folds[0]), "domain_column": "age_group",
                                "test": {"wa": 0.5, "ua": 0.25, "gender_accuracy": 0.75}}))
    run_folds(tmp_path, "v", folds, CountingRun())
    assert capsys.readouterr().out.splitlines() == [
        "[v] fold 0 (s0): WA 0.500 UA 0.250 age_group 0.75 (3 s)",
        "[v] fold 1 (s1): WA 0.500 UA 0.250 (3 s)"]
