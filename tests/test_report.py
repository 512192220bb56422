"""report.py + figures.py: Tables 3 and 4, confusion and t-SNE PNGs, on synthetic fold results."""

import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from adarl_jax.report import figures as F
from adarl_jax.report.fold_spaces import gender_center_summary
from adarl_jax.report.report import write_report
from conftest import CLASSES, GENDERS, utt, write_fold



def hand_set(workdir, variant="backbone"):
    """Fold 0: a male speaker; fold 1: a female one. 3-d features so the sums are by hand."""
    male = [utt(0, 1, [1, 0, 0]), utt(0, 1, [3, 0, 0]),  # anger centre (2, 0, 0)
            utt(2, 1, [0, 0, 2]),  # sadness centre (0, 0, 2)
            utt(3, 1, [5, 5, 5])]  # neutral: no female neutral -> no distance
    female = [utt(0, 0, [0, 4, 0]),  # anger centre (0, 4, 0): distance sqrt(4 + 16)
              utt(2, 0, [0, 1, 1]), utt(2, 0, [0, 3, 1]),  # sadness centre (0, 2, 1): sqrt(4 + 1)
              utt(1, 0, [9, 9, 9]),  # happiness: female only
              utt(-1, 1, [100, 100, 100])]  # unlabelled: left out
    return [write_fold(workdir, variant, 0, "m1", male), write_fold(workdir, variant, 1, "f1", female)]


def test_table4_without_val_features_falls_back_to_the_pooled_figure(tmp_path):
    """Old records (no val_utterances): one gender per fold model, so the only figure is the
    pooled one, male and female centres from different folds, and it is labelled so."""
    folds = hand_set(tmp_path)
    g = gender_center_summary(folds)
    assert g["basis"] == "pooled_across_fold_models" and g["folds"] == []
    assert g["distance"]["anger"] == pytest.approx(math.sqrt(20))
    assert g["distance"]["sadness"] == pytest.approx(math.sqrt(5))
    assert g["distance"]["happiness"] is None and g["distance"]["neutral"] is None

    results = write_report(tmp_path)
    assert results["backbone"]["gender_center_distance"]["anger"] == pytest.approx(math.sqrt(20))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["backbone"]["gender_center"]["basis"] == "pooled_across_fold_models"
    report = (tmp_path / "report.md").read_text()
    assert "| backbone | 4.47† | - | 2.24† | - |" in report
    assert "† Pooled, not per model" in report and "val_utterances" in report
    assert "Inside each fold model" not in report  # every row pooled: the note replaces the text


def per_model_set(workdir, variant="adarl"):
    """Two fold models, each with its test speaker and one validation speaker per gender; the
    same utterance features mean different things in the two models' spaces."""
    # fold 0: test m1 (male); val f2 (female), m3 (male)
    test0 = [utt(0, 1, [2, 0, 0]), utt(2, 1, [0, 0, 4])]
    val0 = [utt(0, 0, [0, 3, 0]), utt(0, 0, [0, 5, 0]),  # female anger centre (0, 4, 0)
            utt(0, 1, [4, 0, 0]),  # male anger: (2 + 4) / 2 = 3 -> centre (3, 0, 0); distance 5
            utt(2, 0, [0, 0, 1]),  # sadness: male (0, 0, 4), female (0, 0, 1): distance 3
            utt(1, 1, [1, 1, 1])]  # happiness: male only in this model
    # fold 1: test f1 (female); val f2, m3 again, but in fold 1's model's space
    test1 = [utt(0, 0, [1, 0, 0]), utt(1, 0, [0, 0, 0])]
    val1 = [utt(0, 1, [1, 2, 2]),  # anger: male (1, 2, 2), female (1, 0, 0): distance sqrt(8)
            utt(1, 1, [6, 8, 0]),  # happiness: male (6, 8, 0), female (0, 0, 0): distance 10
            utt(-1, 0, [50, 50, 50])]  # unlabelled: left out
    return [write_fold(workdir, variant, 0, "m1", test0, val0, ("f2", "m3")),
            write_fold(workdir, variant, 1, "f1", test1, val1, ("f2", "m3"))]


def test_table4_per_fold_model_equals_a_hand_computation(tmp_path):
    folds = per_model_set(tmp_path)
    g = gender_center_summary(folds)
    assert g["basis"] == "fold_models"
    per_fold = {f["fold"]: f["distance"] for f in g["folds"]}
    assert per_fold[0] == pytest.approx({"anger": 5.0, "happiness": None, "sadness": 3.0, "neutral": None})
    assert per_fold[1]["anger"] == pytest.approx(math.sqrt(8)) and per_fold[1]["happiness"] == pytest.approx(10.0)
    assert per_fold[1]["sadness"] is None
    assert g["distance"]["anger"] == pytest.approx((5 + math.sqrt(8)) / 2)
    assert g["spread"]["anger"] == pytest.approx(abs(5 - math.sqrt(8)) / math.sqrt(2))  # sd, ddof 1
    assert g["n_models"] == {"anger": 2, "happiness": 1, "sadness": 1, "neutral": 0}
    assert g["distance"]["happiness"] == pytest.approx(10.0) and g["spread"]["happiness"] is None
    assert g["distance"]["neutral"] is None

    hand_set(tmp_path, "backbone")  # an old run's variant beside it: pooled, marked
    results = write_report(tmp_path, figures=False)
    assert results["adarl"]["gender_center_distance"]["sadness"] == pytest.approx(3.0)
    assert results["adarl"]["n_utterances"] == 4  # scores: the test speakers' utterances only
    report = (tmp_path / "report.md").read_text()
    assert "| adarl | 3.91 ± 1.54 (2) | 10.00 (1) | 3.00 (1) | - |" in report
    assert "| backbone | 4.47† | - | 2.24† | - |" in report
    assert "Inside each fold model" in report and "† Pooled, not per model" in report


def test_random_features_against_numpy_per_model(tmp_path):
    rng = np.random.default_rng(0)
    folds, want = [], {c: [] for c in CLASSES}
    for fold in range(4):
        rows = [utt(i % 4, fold % 2, rng.normal(size=16)) for i in range(8)]
        val = [utt(i % 4, (i // 4) % 2, rng.normal(size=16)) for i in range(16)]
        folds.append(write_fold(tmp_path, "adarl", fold, f"s{fold}", rows, val, ("a", "b")))
        x = np.array([u["deep_feature"] for u in rows + val])
        y = np.array([u["emotion"] for u in rows + val])
        sex = np.array([u["gender"] for u in rows + val])
        for e, c in enumerate(CLASSES):
            m, f = x[(y == e) & (sex == 1)].mean(0), x[(y == e) & (sex == 0)].mean(0)
            want[c].append(np.linalg.norm(m - f))
    g = gender_center_summary(folds)
    for c in CLASSES:
        assert g["distance"][c] == pytest.approx(np.mean(want[c]), rel=1e-9)
        assert g["spread"][c] == pytest.approx(np.std(want[c], ddof=1), rel=1e-9)


def is_png(path):
    with Image.open(path) as im:
        im.verify()
        fmt = im.format
    with Image.open(path) as im:
        return fmt == "PNG" and im.size[0] > 100 and im.size[1] > 100


def random_rows(rng, n, gender, offset=0.0):
    return [utt(i % 4, gender, rng.normal(size=64) + 3 * (i % 4) + offset,
                probs=list(rng.dirichlet(np.ones(4)))) for i in range(n)]


def test_figures_tables_and_links(tmp_path):
    rng = np.random.default_rng(1)
    # adarl: 3 fold models x (8 test + 8 validation utterances) -> one t-SNE panel each;
    # backbone: the hand set, at most 4 held-out utterances per fold model -> too few
    hand_set(tmp_path, "backbone")
    for fold, (spk, g) in enumerate((("m1", 1), ("f1", 0), ("m2", 1))):
        val = random_rows(rng, 4, 0) + random_rows(rng, 4, 1)
        write_fold(tmp_path, "adarl", fold, spk, random_rows(rng, 8, g), val, ("f9", "m9"))
    before = json.loads(json.dumps(write_report(tmp_path, figures=False)))
    assert not (tmp_path / "figures").exists()

    results = write_report(tmp_path)
    keys = {"classes", "wa_pooled", "ua_pooled", "wa_fold_mean", "ua_fold_mean", "per_class_recall",
            "confusion", "n_utterances", "folds"}
    assert keys <= set(results["adarl"]) and json.loads(json.dumps(results)) == before
    assert results["adarl"]["n_utterances"] == 24  # validation utterances are never scored

    figs = tmp_path / "figures"
    assert is_png(figs / "confusion_adarl.png") and is_png(figs / "confusion_backbone.png")
    assert is_png(figs / "tsne_adarl.png")
    assert not (figs / "tsne_backbone.png").exists()

    report = (tmp_path / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(links) == ["figures/confusion_adarl.png", "figures/confusion_backbone.png",
                             "figures/tsne_adarl.png"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "t-SNE skipped: no fold model has 10 held-out utterances with deep features (at most 4)" in report
    assert "one panel per fold model" in report and "validation speakers (hollow)" in report
    # Table 3: the variants in the paper's order, over the folds both finished (0 and 1)
    t3 = report.split("## Table 3")[1].split("##")[0]
    assert "the 2 fold(s) that every variant finished (0, 1)" in t3
    rows = [l for l in t3.splitlines() if l.startswith("| backbone") or l.startswith("| adarl")]
    assert rows[0].startswith("| backbone") and rows[1].startswith("| adarl")
    assert "0.7302 | 0.6586" in rows[1]  # the paper's IEMOCAP figures beside ours
    assert "## Table 4" in report and "| paper: adarl | 6.32 | 3.23 | 5.41 | 4.66 |" in report


def test_no_embedding_mixes_two_fold_models(tmp_path, monkeypatch):
    """Every t-SNE call gets the held-out utterances of exactly one fold model: its test and
    validation speakers (both genders), nothing of another fold."""
    rng = np.random.default_rng(2)
    for fold, (spk, g) in enumerate((("m1", 1), ("f1", 0), ("m2", 1), ("f2", 0))):
        tag = lambda rows: [dict(u, deep_feature=[100.0 * fold] + u["deep_feature"][1:]) for u in rows]  # noqa: E731
        val = tag(random_rows(rng, 5, 0) + random_rows(rng, 5, 1))
        write_fold(tmp_path, "adarl", fold, spk, tag(random_rows(rng, 6, g)), val, ("fv", "mv"))
    calls = []
    real = F.tsne_embedding
    monkeypatch.setattr(F, "tsne_embedding", lambda x, seed=0: calls.append(np.array(x)) or real(x, seed))
    write_report(tmp_path)
    assert len(calls) == 4
    assert sorted({float(v) for v in x[:, 0]}.pop() for x in calls) == [0.0, 100.0, 200.0, 300.0]
    assert all(len({float(v) for v in x[:, 0]}) == 1 and len(x) == 16 for x in calls)
    assert is_png(tmp_path / "figures" / "tsne_adarl.png")


def test_tsne_without_val_features_is_per_fold_and_says_so(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    for fold, (spk, g) in enumerate((("m1", 1), ("f1", 0))):
        write_fold(tmp_path, "adarl", fold, spk, random_rows(rng, 12, g))
    calls = []
    real = F.tsne_embedding
    monkeypatch.setattr(F, "tsne_embedding", lambda x, seed=0: calls.append(len(x)) or real(x, seed))
    write_report(tmp_path)
    assert calls == [12, 12]  # one embedding per fold model, never the 24 pooled
    report = (tmp_path / "report.md").read_text()
    assert "of its test speaker's utterances only" in report and "not where it places the two genders" in report
    assert is_png(tmp_path / "figures" / "tsne_adarl.png")


def test_stale_tsne_is_removed_when_too_few_points(tmp_path):
    hand_set(tmp_path, "adarl")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "tsne_adarl.png").write_bytes(b"old")
    write_report(tmp_path)
    assert not (tmp_path / "figures" / "tsne_adarl.png").exists()
    assert is_png(tmp_path / "figures" / "confusion_adarl.png")


def test_results_without_deep_features_still_report(tmp_path):
    folds = hand_set(tmp_path, "adarl")
    for r in folds:
        for u in r["utterances"]:
            del u["deep_feature"]
        p = next((tmp_path / "adarl").glob(f"fold_{r['fold']:02d}_*")) / "result.json"
        p.write_text(json.dumps(r))
    results = write_report(tmp_path)
    assert set(results["adarl"]["gender_center_distance"].values()) == {None}
    assert results["adarl"]["gender_center"]["basis"] is None
    report = (tmp_path / "report.md").read_text()
    assert "t-SNE skipped: no fold model has 10 held-out utterances with deep features (at most 0)" in report
    assert "No variant carries deep features" in report
