"""report.py + figures.py: Tables 3 and 4, confusion and t-SNE PNGs, on synthetic fold results."""

import json
import math
import re

import numpy as np
import pytest
from PIL import Image

from adarl_jax.report import gender_center_distances, write_report

CLASSES = ["anger", "happiness", "sadness", "neutral"]
GENDERS = ["F", "M"]  # index 0 = F, 1 = M, as config.data.genders


def utt(emotion, gender, feature, probs=None):
    probs = probs or [float(k == emotion) for k in range(4)]
    return {"utterance": 0, "path": "x.wav", "speaker": "", "emotion": emotion, "gender": gender,
            "segments": 1, "probs": probs, "deep_feature": list(map(float, feature))}


def write_fold(workdir, variant, fold, speaker, utterances):
    d = workdir / variant / f"fold_{fold:02d}_{speaker}"
    d.mkdir(parents=True)
    r = {"variant": variant, "fold": fold, "test_speaker": speaker, "classes": CLASSES,
         "genders": GENDERS, "selected_epoch": 0, "test": {"wa": 0.0, "ua": 0.0, "n": 0},
         "utterances": utterances}
    (d / "result.json").write_text(json.dumps(r))
    return r


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


def test_table4_equals_a_hand_computation(tmp_path):
    folds = hand_set(tmp_path)
    d = gender_center_distances(folds)
    assert d["anger"] == pytest.approx(math.sqrt(20))
    assert d["sadness"] == pytest.approx(math.sqrt(5))
    assert d["happiness"] is None and d["neutral"] is None

    results = write_report(tmp_path)
    assert results["backbone"]["gender_center_distance"]["anger"] == pytest.approx(math.sqrt(20))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["backbone"]["gender_center_distance"]["sadness"] == pytest.approx(math.sqrt(5))
    report = (tmp_path / "report.md").read_text()
    assert "| backbone | 4.47 | - | 2.24 | - |" in report


def test_distance_against_numpy_on_random_features(tmp_path):
    rng = np.random.default_rng(0)
    folds, feats = [], {}
    for fold in range(4):
        gender = fold % 2
        rows = []
        for i in range(12):
            e, f = i % 4, rng.normal(size=64)
            rows.append(utt(e, gender, f))
            feats.setdefault((e, gender), []).append(f)
        folds.append(write_fold(tmp_path, "adarl", fold, f"s{fold}", rows))
    d = gender_center_distances(folds)
    for e, c in enumerate(CLASSES):
        want = np.linalg.norm(np.mean(feats[(e, 1)], 0) - np.mean(feats[(e, 0)], 0))
        assert d[c] == pytest.approx(want, rel=1e-9)


def is_png(path):
    with Image.open(path) as im:
        im.verify()
        fmt = im.format
    with Image.open(path) as im:
        return fmt == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_figures_tables_and_links(tmp_path):
    rng = np.random.default_rng(1)
    # adarl: 3 folds x 8 utterances -> t-SNE; backbone: the hand set, 8 labelled -> too few
    hand_set(tmp_path, "backbone")
    for fold, (spk, g) in enumerate((("m1", 1), ("f1", 0), ("m2", 1))):
        rows = [utt(i % 4, g, rng.normal(size=64) + 3 * (i % 4),
                    probs=list(rng.dirichlet(np.ones(4)))) for i in range(8)]
        write_fold(tmp_path, "adarl", fold, spk, rows)
    before = json.loads(json.dumps(write_report(tmp_path, figures=False)))
    assert not (tmp_path / "figures").exists()

    results = write_report(tmp_path)
    keys = {"classes", "wa_pooled", "ua_pooled", "wa_fold_mean", "ua_fold_mean", "per_class_recall",
            "confusion", "n_utterances", "folds"}
    assert keys <= set(results["adarl"]) and json.loads(json.dumps(results)) == before

    figs = tmp_path / "figures"
    assert is_png(figs / "confusion_adarl.png") and is_png(figs / "confusion_backbone.png")
    assert is_png(figs / "tsne_adarl.png")
    assert not (figs / "tsne_backbone.png").exists()

    report = (tmp_path / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(links) == ["figures/confusion_adarl.png", "figures/confusion_backbone.png",
                             "figures/tsne_adarl.png"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "t-SNE skipped: 8 test utterance(s)" in report
    # Table 3: the variants in the paper's order, over the folds both finished (0 and 1)
    t3 = report.split("## Table 3")[1].split("##")[0]
    assert "the 2 fold(s) that every variant finished (0, 1)" in t3
    rows = [l for l in t3.splitlines() if l.startswith("| backbone") or l.startswith("| adarl")]
    assert rows[0].startswith("| backbone") and rows[1].startswith("| adarl")
    assert "0.7302 | 0.6586" in rows[1]  # the paper's IEMOCAP figures beside ours
    assert "## Table 4" in report and "| paper: adarl | 6.32 | 3.23 | 5.41 | 4.66 |" in report


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
    assert "t-SNE skipped: 0 test utterance(s)" in (tmp_path / "report.md").read_text()
