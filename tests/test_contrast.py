"""contrast.py: the pre-registered A vs B contrast over seeds and corpora, against scipy's
one-sample t-interval, its exact sign-flip permutation test, the noncentral t power, and
hand-built workdirs."""

import json

import numpy as np
import pytest
from scipy import stats

from adarl_jax.cli import main
from adarl_jax.report.contrast import contrast_workdirs, interaction_differences, stratified_contrast
from conftest import utt, write_fold


def test_t_interval_sign_flip_and_mde_against_scipy():
    rng = np.random.default_rng(3)
    d = rng.normal(0.02, 0.05, size=(1, 12))  # one seed, 12 speakers
    c = stratified_contrast({"x": d})
    ref = stats.ttest_1samp(d[0], 0.0).confidence_interval(0.95)
    np.testing.assert_allclose(c["t_ci95"], [ref.low, ref.high], rtol=1e-10)
    perm = stats.permutation_test((d[0],), np.mean, permutation_type="samples",
                                  alternative="two-sided", n_resamples=np.inf)
    assert c["p_sign_flip"] == pytest.approx(perm.pvalue, abs=1e-9)  # both exact (2^12 patterns)
    # at the MDE, a two-sided t-test at 5% rejects with probability about 0.8
    n, df = 12, 11
    se = d[0].std(ddof=1) / np.sqrt(n)
    crit = stats.t.ppf(0.975, df)
    delta = c["mde80"] / se
    power = stats.nct.sf(crit, df, delta) + stats.nct.cdf(-crit, df, delta)
    assert power == pytest.approx(0.80, abs=0.01)


def test_bootstrap_resamples_within_each_corpus():
    # every speaker of corpus a gains 1.0, of b 0.0: the pooled mean of 10 + 10 speakers is 0.5
    # whatever the resample, if and only if speakers never move between corpora
    c = stratified_contrast({"a": np.ones((2, 10)), "b": np.zeros((3, 10))})
    assert c["mean"] == pytest.approx(0.5)
    np.testing.assert_allclose(c["boot_ci95"], [0.5, 0.5], atol=1e-12)
    assert c["n_speakers"] == 20 and c["n_seeds"] == {"a": 2, "b": 3}
    assert c["verdict"] == "A helps"
    hurts = stratified_contrast({"a": -np.ones((1, 4)) - np.arange(4) * 0.01})
    assert hurts["verdict"] == "A hurts"
    null = stratified_contrast({"a": np.array([[0.1, -0.1, 0.05, -0.02]])})
    assert null["verdict"].startswith("no effect shown: effects below")


def _answers(correct: int):
    """Four anger utterances, the first `correct` labelled anger: UA (one class) correct / 4."""
    return [utt(0, 1, [0.0], probs=[1.0, 0, 0, 0] if i < correct else [0, 0, 1.0, 0])
            for i in range(4)]


def _workdir(root, name, corpus_dir, folds, only_a=False):
    """folds: [(speaker, A's correct, B's correct)]; the seed is the name's '-s<k>' suffix."""
    w = root / name
    w.mkdir()
    seed = int(name.rsplit("-s", 1)[1])
    (w / "config.json").write_text(json.dumps({"data": {"dir": str(corpus_dir), "corpus": "csv"},
                                               "train": {"seed": seed}}))
    for i, (spk, a, b) in enumerate(folds):
        write_fold(w, "adarl", i, spk, _answers(a))
        if not only_a:
            write_fold(w, "adarl_no_domain_loss", i, spk, _answers(b))
    return w


def test_workdirs_grouped_by_corpus_and_speakers_kept_apart(tmp_path, capsys):
    # speaker "03" exists in both corpora: two speakers, not one
    one = [_workdir(tmp_path, "c1-s0", "/data/one", [("03", 4, 2), ("08", 3, 3)]),
           _workdir(tmp_path, "c1-s1", "/data/one", [("03", 4, 4), ("08", 2, 3)])]
    two = [_workdir(tmp_path, "c2-s0", "/data/two", [("03", 1, 2), ("11", 4, 0), ("12", 2, 2)])]
    r = contrast_workdirs("adarl", "adarl_no_domain_loss", one + two)
    assert set(r["corpora"]) == {"one", "two"}
    # corpus one: speaker 03 (0.5 + 0) / 2 = 0.25, speaker 08 (0 - 0.25) / 2 = -0.125
    assert r["corpora"]["one"]["per_speaker"] == {"03": 0.25, "08": -0.125}
    assert r["corpora"]["two"]["per_speaker"] == {"03": -0.25, "11": 1.0, "12": 0.0}
    assert r["pooled"]["n_speakers"] == 5
    assert r["pooled"]["mean"] == pytest.approx((0.25 - 0.125 - 0.25 + 1.0 + 0.0) / 5)
    out = tmp_path / "contrast.md"
    assert main(["contrast", "adarl", "adarl_no_domain_loss", *map(str, one + two),
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert "| pooled | 2, 1 | 5 | +0.175 |" in text and "Verdict (adarl - adarl_no_domain_loss" in text
    assert json.loads(out.with_suffix(".json").read_text())["pooled"]["n_speakers"] == 5
    with pytest.raises(FileNotFoundError, match="no workdir holds finished folds of both"):
        contrast_workdirs("adarl", "backbone", one)


def test_versus_is_the_interaction_seed_by_seed_and_speaker_by_speaker(tmp_path):
    # condition 1 (seeds 0, 1) and condition 2 (seeds 0, 1) on one corpus; speaker 11 only in 1
    first = [_workdir(tmp_path, "seg-s0", "/data/one", [("03", 4, 2), ("08", 3, 3), ("11", 4, 0)]),
             _workdir(tmp_path, "seg-s1", "/data/one", [("03", 4, 4), ("08", 2, 3), ("11", 4, 0)])]
    second = [_workdir(tmp_path, "spk-s0", "/data/one", [("08", 1, 3), ("03", 2, 2)]),
              _workdir(tmp_path, "spk-s1", "/data/one", [("08", 3, 3), ("03", 4, 2)])]
    r = contrast_workdirs("adarl", "adarl_no_domain_loss", first, versus=second)
    # 03: seeds (0.5 - 0, 0 - 0.5) -> 0; 08: (0 - (-0.5), -0.25 - 0) -> 0.125
    assert r["corpora"]["one"]["per_speaker"] == {"03": 0.0, "08": 0.125}
    assert r["versus"] and r["pooled"]["mean"] == pytest.approx(0.0625)
    out = tmp_path / "interaction.md"
    assert main(["contrast", "adarl", "adarl_no_domain_loss", *map(str, first), "--versus",
                 *map(str, second), "--out", str(out)]) == 0
    assert "interaction" in out.read_text()
    # seeds pair by train.seed, whatever the order given: seed 0 row 0.5 - 0 and -0 + 0.5 ...
    d = interaction_differences("adarl", "adarl_no_domain_loss", first[::-1], second)["one"]
    np.testing.assert_allclose(d["d"], [[0.5, 0.5], [-0.5, -0.25]])  # seeds 0, 1; speakers 03, 08
    with pytest.raises(ValueError, match="same seeds"):
        contrast_workdirs("adarl", "adarl_no_domain_loss", first, versus=second[:1])
    # a workdir without B's folds drops its seed: seeds {1, 2} against {0, 1} are refused,
    # not paired by position
    one = [_workdir(tmp_path, "x-s0", "/data/one", [("03", 4, 2)], only_a=True),
           _workdir(tmp_path, "x-s1", "/data/one", [("03", 4, 2)]),
           _workdir(tmp_path, "x-s2", "/data/one", [("03", 3, 2)])]
    two = [_workdir(tmp_path, "y-s0", "/data/one", [("03", 4, 2)]),
           _workdir(tmp_path, "y-s1", "/data/one", [("03", 1, 2)]),
           _workdir(tmp_path, "y-s2", "/data/one", [("03", 4, 2)], only_a=True)]
    with pytest.raises(ValueError, match=r"seeds \[1, 2\] against \[0, 1\]"):
        contrast_workdirs("adarl", "adarl_no_domain_loss", one, versus=two)
