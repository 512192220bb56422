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
