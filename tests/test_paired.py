"""paired.py: paired comparisons over test speakers (and seeds), against hand-computed cases."""

import numpy as np
import pytest

from adarl_jax.report.paired import comparisons, paired_comparison


def test_sign_flip_p_value_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give means (+-1 +-2 +-3) / 3 = 2, 4/3, 2/3, 0, 0,
    # -2/3, -4/3, -2; |mean| >= 2 for two of them -> p = 2/8
    a = {"s1": 1.0, "s2": 2.0, "s3": 3.0}
    b = {"s1": 0.0, "s2": 0.0, "s3": 0.0}
    c = paired_comparison(a, b)
    assert c["mean"] == pytest.approx(2.0)
    assert c["p_sign_flip"] == pytest.approx(0.25)
    assert (c["speakers_better"], c["speakers_worse"], c["n_speakers"]) == (3, 0, 3)
    # d = (1, -1): means 0, 1, -1, 0 -> |mean| >= 0 for all -> p = 1
    assert paired_comparison({"x": 1.0, "y": 0.0}, {"x": 0.0, "y": 1.0})["p_sign_flip"] == 1.0


def test_bootstrap_interval_by_hand():
    # d = (0, 1): resampled means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5th
    # and 97.5th percentiles are 0 and 1; a constant difference has a zero-width interval
    c = paired_comparison({"x": 0.5, "y": 1.0}, {"x": 0.5, "y": 0.0})
    assert c["ci95"] == [0.0, 1.0] and c["mean"] == 0.5
    flat = paired_comparison({"x": 0.7, "y": 0.9, "z": 0.6}, {"x": 0.6, "y": 0.8, "z": 0.5})
    np.testing.assert_allclose(flat["ci95"], [0.1, 0.1], atol=1e-12)


def test_seeds_pair_by_position_and_only_shared_speakers_count():
    a = [{"s1": 0.8, "s2": 0.6, "s3": 0.9}, {"s1": 0.6, "s2": 0.6}]
    b = [{"s1": 0.5, "s2": 0.6, "s3": 0.1}, {"s1": 0.7, "s2": 0.5}]
    c = paired_comparison(a, b)
    # s3 is missing from seed 1: compared on s1, s2; d = [[0.3, 0], [-0.1, 0.1]]
    assert c["n_speakers"] == 2 and c["n_seeds"] == 2
    assert c["mean"] == pytest.approx(0.075)
    assert c["per_speaker"] == {"s1": pytest.approx(0.1), "s2": pytest.approx(0.05)}
    with pytest.raises(ValueError, match="as many runs"):
        paired_comparison(a, b[:1])


def test_which_pairs_are_reported():
    assert comparisons(["backbone", "adarl"]) == [("adarl", "backbone")]
    assert comparisons(["backbone", "domain_invariant", "adarl_no_domain_loss", "adarl"]) == [
        ("domain_invariant", "backbone"), ("adarl_no_domain_loss", "backbone"), ("adarl", "backbone"),
        ("domain_invariant", "adarl_no_domain_loss"), ("adarl", "adarl_no_domain_loss")]
    assert comparisons(["adarl"]) == []


def test_report_carries_the_paired_table(tmp_path):
    import json

    from adarl_jax.report.report import write_report
    from test_report import utt, write_fold

    def rows(correct):  # two classes, each utterance right or wrong
        return [utt(e, 0, [0.0], probs=[1.0, 0.0, 0.0, 0.0] if (e == 0) == ok else [0.0, 1.0, 0.0, 0.0])
                for e, ok in zip((0, 1), correct)]

    for k, spk in enumerate(("a", "b", "c")):
        write_fold(tmp_path, "backbone", k, spk, rows((True, False)))  # UA 0.5 each
        write_fold(tmp_path, "adarl", k, spk, rows((True, True)))  # UA 1.0 each
    write_report(tmp_path, figures=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    c = saved["adarl"]["paired"]["vs backbone"]
    assert c["mean"] == pytest.approx(0.5) and c["ci95"] == [0.5, 0.5]
    assert c["p_sign_flip"] == pytest.approx(2 / 8) and c["speakers_better"] == 3
    assert "| adarl vs backbone | 1 | 3 | +0.500 | [+0.500, +0.500] | 0.250 | 3 / 0 |" in (
        tmp_path / "report.md").read_text()
