"""seeds.py: mean ± std over seed workdirs, against a hand computation on synthetic folds."""

import json
import math

import pytest

from adarl_jax.report.seeds import summarize_seeds, write_seeds_report
from conftest import utt, write_fold


def predictions(correct: int, total: int = 4):
    """`total` anger utterances of which the first `correct` are predicted anger (else sadness)."""
    return [utt(0, 1, [0.0], probs=[1.0, 0, 0, 0] if i < correct else [0, 0, 1.0, 0])
            for i in range(total)]


def seed_dir(root, name, adarl_correct, backbone_correct, extra_fold=False):
    w = root / name
    for variant, correct in (("adarl", adarl_correct), ("backbone", backbone_correct)):
        write_fold(w, variant, 0, "m1", predictions(correct))
    if extra_fold:  # a fold only this seed finished: left out of every seed's figure
        write_fold(w, "adarl", 1, "f1", predictions(0))
    return w


def test_mean_std_and_paired_difference_by_hand(tmp_path):
    # WA (one class present: UA over the classes present equals WA) per seed:
    # adarl 4/4, 2/4, 3/4 -> mean 0.75, std (ddof 1) 0.25; backbone 1/4, 1/4, 2/4
    dirs = [seed_dir(tmp_path, "s0", 4, 1, extra_fold=True), seed_dir(tmp_path, "s1", 2, 1),
            seed_dir(tmp_path, "s2", 3, 2)]
    s = summarize_seeds(dirs)
    assert s["adarl"]["folds"] == [0]
    assert s["adarl"]["wa_pooled"]["mean"] == pytest.approx(0.75)
    assert s["adarl"]["wa_pooled"]["std"] == pytest.approx(0.25)
    assert s["adarl"]["ua_pooled"]["values"] == [1.0, 0.5, 0.75]
    assert s["backbone"]["wa_pooled"]["mean"] == pytest.approx(4 / 12)
    # differences per seed: 0.75, 0.25, 0.25 -> mean 5/12, std sqrt(((1/3)^2 + 2 (1/6)^2) / 2)
    d = s["ua_adarl_minus_backbone"]
    assert d["values"] == [0.75, 0.25, 0.25]
    assert d["mean"] == pytest.approx(5 / 12)
    assert d["std"] == pytest.approx(math.sqrt(((1 / 3) ** 2 + 2 * (1 / 6) ** 2) / 2))


def test_report_files_and_missing_runs(tmp_path):
    dirs = [seed_dir(tmp_path, "s0", 4, 1), seed_dir(tmp_path, "s1", 2, 1)]
    out = tmp_path / "seeds.md"
    write_seeds_report(dirs, out)
    text = out.read_text()
    assert "| adarl | 2 | 1 | 0.750 ± 0.354 |" in text
    assert json.loads(out.with_suffix(".json").read_text())["backbone"]["wa_pooled"]["n"] == 2
    write_seeds_report(dirs[:1], out)  # one seed: a value, not a spread of zero
    assert "| adarl | 1 | 1 | 1.000 | 1.000 |" in out.read_text()
    with pytest.raises(FileNotFoundError, match="no finished folds"):
        summarize_seeds([tmp_path / "empty"])


def test_seed_ensemble_averages_probabilities_by_hand(tmp_path):
    # adarl correct on the first 4, 2, 3 of 4 anger utterances: the mean probabilities are
    # anger for utterances 0-2 (3/3, 3/3, 2/3 votes) and sadness for 3 (1/3): WA 3/4.
    dirs = [seed_dir(tmp_path, "s0", 4, 1), seed_dir(tmp_path, "s1", 2, 1), seed_dir(tmp_path, "s2", 3, 2)]
    # gender: utterance 0 is male (1); the seeds say male with 0.9, 0.2, 0.2 -> mean 0.433:
    # female, wrong, though one seed was right; utterances 1-3 male in every seed: right.
    for w, p_male in zip(dirs, (0.9, 0.2, 0.2)):
        path = next((w / "adarl").glob("fold_00_*/result.json"))
        r = json.loads(path.read_text())
        for i, u in enumerate(r["utterances"]):
            u["domain_probs"] = [1 - p_male, p_male] if i == 0 else [0.1, 0.9]
        path.write_text(json.dumps(r))
    s = summarize_seeds(dirs)
    ens = s["adarl"]["ensemble"]
    assert ens["wa_pooled"] == pytest.approx(0.75)
    assert ens["gender_accuracy_fold_mean"] == pytest.approx(0.75)
    assert s["backbone"]["ensemble"]["wa_pooled"] == pytest.approx(0.25)  # 1, 1, 2 correct: only utt 0
    assert "gender_accuracy_fold_mean" not in s["backbone"]["ensemble"]
    out = tmp_path / "seeds.md"
    write_seeds_report(dirs, out)
    assert "| adarl, ensemble of the 3 seeds | 3 | 1 | 0.750 | 0.750 |" in out.read_text()


def test_seed_ensemble_refuses_different_test_utterances(tmp_path):
    dirs = [seed_dir(tmp_path, "s0", 4, 1), seed_dir(tmp_path, "s1", 2, 1)]
    path = next((dirs[1] / "adarl").glob("fold_00_*/result.json"))
    r = json.loads(path.read_text())
    r["utterances"][2]["path"] = "other.wav"
    path.write_text(json.dumps(r))
    with pytest.raises(ValueError, match="fold 0: the runs scored different utterances"):
        summarize_seeds(dirs)


def test_the_seed_ensemble_on_validation_speakers_by_hand(tmp_path):
    """Validation utterances of the four classes, one each; three seeds whose models label
    them (anger, happiness, sadness, neutral are 0-3):
      seed 0: 0, 1, 0, 0 -> recall 1, 1, 0, 0: UA 0.5
      seed 1: 0, 0, 2, 0 -> UA 0.5
      seed 2: 1, 1, 2, 3 -> UA 0.75 (anger wrong)
    Probabilities 0.6 on the label, the rest spread evenly, so the mean's argmax is the
    majority label, or the first of a tie: 0, 1, 2, 0 -> UA 0.75. One model: (0.5 + 0.5 +
    0.75) / 3 = 0.5833."""
    labels = [[0, 1, 0, 0], [0, 0, 2, 0], [1, 1, 2, 3]]
    dirs = []
    for s, said in enumerate(labels):
        val = [utt(k, 1, [0.0], probs=[0.6 if j == p else 0.4 / 3 for j in range(4)])
               for k, p in enumerate(said)]
        for i, u in enumerate(val):
            u["utterance"] = i
        w = tmp_path / f"s{s}"
        write_fold(w, "adarl", 0, "m1", predictions(2), val=val)
        dirs.append(w)
    val = summarize_seeds(dirs)["adarl"]["ensemble_validation"]
    assert val["single_mean_fold_ua"]["mean"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert val["ensemble_mean_fold_ua"] == pytest.approx(0.75)
    assert (val["ensemble_higher_folds"], val["folds"]) == (1, 1)
    out = tmp_path / "seeds.md"
    write_seeds_report(dirs, out)
    assert "| adarl | 0.583 ± 0.144 | 0.750 | 1 / 1 folds |" in out.read_text()


def test_seeds_that_validated_on_other_speakers_get_no_validation_ensemble(tmp_path):
    dirs = []
    for s, speaker in enumerate(("v1", "v2")):
        val = [utt(0, 1, [0.0]) for _ in range(2)]
        for i, u in enumerate(val):
            u["utterance"], u["path"] = i, f"{speaker}_{i}.wav"
        w = tmp_path / f"s{s}"
        write_fold(w, "adarl", 0, "m1", predictions(2), val=val)
        dirs.append(w)
    summary = summarize_seeds(dirs)
    assert "ensemble" in summary["adarl"] and "ensemble_validation" not in summary["adarl"]


def test_the_same_recordings_through_a_linked_corpus_folder_are_the_same(tmp_path):
    """Seeds trained from two checkouts, each reading the corpus through its own link to one
    folder, scored the same recordings: the ensemble averages them."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.wav").write_bytes(b"")
    (tmp_path / "link").symlink_to(corpus)
    dirs = [seed_dir(tmp_path, "s0", 4, 1), seed_dir(tmp_path, "s1", 2, 1)]
    for d, root in zip(dirs, (corpus, tmp_path / "link")):
        for path in d.glob("*/fold_00_*/result.json"):
            r = json.loads(path.read_text())
            for u in r["utterances"]:
                u["path"] = str(root / "a.wav")
            path.write_text(json.dumps(r))
    # 4 and 2 of 4 right: the two wrong ones average to anger 0.5 / sadness 0.5, a tie argmax
    # resolves to anger (the first class), so the ensemble gets all four
    assert summarize_seeds(dirs)["adarl"]["ensemble"]["wa_pooled"] == pytest.approx(1.0)
