import numpy as np
import pytest

from adarl_jax import metrics as M


def test_wa_ua_by_hand():
    # 3 classes; class 0: 3 of 4 right, class 1: 1 of 2 right, class 2: 0 of 1 right.
    y = [0, 0, 0, 0, 1, 1, 2]
    p = [0, 0, 0, 1, 1, 0, 1]
    assert M.weighted_accuracy(y, p) == pytest.approx(4 / 7)
    assert M.unweighted_accuracy(y, p, 3) == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    np.testing.assert_array_equal(M.confusion(y, p, 3), [[3, 1, 0], [1, 1, 0], [0, 1, 0]])


def test_ua_ignores_classes_absent_from_the_test_speaker():
    y = [0, 0, 1, 1]
    p = [0, 2, 1, 1]  # class 2 never occurs as a true label
    assert M.unweighted_accuracy(y, p, 3) == pytest.approx((0.5 + 1.0) / 2)
    r = M.per_class_recall(y, p, 3)
    assert np.isnan(r[2]) and r[0] == 0.5


def test_row_normalised():
    m = np.array([[2, 2], [0, 0]])
    out = M.row_normalised(m)
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    assert np.all(np.isnan(out[1]))


def test_score_utterances_counts_by_hand_and_scores_only_known_domains():
    def row(emotion, probs, gender, domain_probs=None):
        r = {"emotion": emotion, "probs": probs, "gender": gender}
        if domain_probs is not None:
            r["domain_probs"] = domain_probs
        return r

    rows = [row(0, [0.9, 0.1], 0, [0.8, 0.2]),   # right, domain right
            row(1, [0.7, 0.3], 1, [0.6, 0.4]),   # wrong, domain wrong
            row(1, [0.2, 0.8], -1, [0.1, 0.9]),  # right; domain unknown: not scored
            row(-1, [0.5, 0.5], 0)]              # unlabelled: not scored
    out = M.score_utterances(rows, 2)
    assert out["n"] == 3
    assert out["wa"] == pytest.approx(2 / 3)
    assert out["ua"] == pytest.approx((1 + 1 / 2) / 2)
    assert out["gender_accuracy"] == pytest.approx(1 / 2)
    assert "gender_accuracy" not in M.score_utterances([row(0, [1.0, 0.0], -1, [1.0, 0.0])], 2)
