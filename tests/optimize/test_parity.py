"""check_parity: the stated tolerances, labels on the decision boundary, failures it must see."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from loopml.optimize.parity import PROBABILITY_ATOL, check_parity, regression_tolerance


@dataclass
class Fixed:
    """A model that answers the same arrays whatever the rows (the labels follow them)."""

    task: str
    answers: np.ndarray
    threshold: float = 0.5
    classes: list = field(default_factory=lambda: [0, 1])

    def predict_proba(self, frame):
        return self.answers

    def predict(self, frame):
        if self.task == "regression":
            return self.answers
        if self.task == "binary":
            return np.asarray(self.classes)[(self.answers[:, 1] >= self.threshold).astype(int)]
        return np.asarray(self.classes)[self.answers.argmax(axis=1)]


ROWS = pd.DataFrame({"a": range(4)})


def binary(p1):
    p1 = np.asarray(p1, dtype=float)
    return np.column_stack([1 - p1, p1])


def test_float32_rounding_passes():
    native = Fixed("binary", binary([0.1, 0.4, 0.7, 0.9]))
    exported = Fixed("binary", binary([0.1, 0.4, 0.7, 0.9]).astype(np.float32))
    parity = check_parity(native, exported, ROWS)
    assert parity.passed and parity.label_mismatches == 0
    assert parity.max_abs_diff < 1e-7 and parity.tolerance == PROBABILITY_ATOL
    assert parity.rows == 4


def test_a_real_difference_fails():
    native = Fixed("binary", binary([0.1, 0.4, 0.7, 0.9]))
    exported = Fixed("binary", binary([0.1, 0.4, 0.7, 0.9 - 2e-3]))
    parity = check_parity(native, exported, ROWS)
    assert not parity.passed
    assert parity.max_abs_diff == pytest.approx(2e-3)


def test_a_flipped_label_far_from_the_threshold_fails():
    native = Fixed("multiclass", np.array([[0.2, 0.8, 0.0]] * 4), classes=["a", "b", "c"])
    flipped = native.answers.copy()
    flipped[2] = [0.8, 0.2, 0.0]
    parity = check_parity(native, Fixed("multiclass", flipped, classes=["a", "b", "c"]), ROWS)
    assert not parity.passed and parity.label_mismatches == 1


def test_a_label_on_the_threshold_is_borderline_not_a_mismatch():
    native = Fixed("binary", binary([0.1, 0.4, 0.7, 0.3]), threshold=0.3)
    exported = Fixed("binary", binary([0.1, 0.4, 0.7, 0.3 - 1e-6]), threshold=0.3)
    parity = check_parity(native, exported, ROWS)
    assert parity.passed and parity.label_mismatches == 0
    assert "decision boundary" in parity.detail


def test_regression_tolerance_scales_with_spread_and_size():
    values = np.array([1e6, 1e6 + 10, 1e6 - 10, 1e6])
    tolerance = regression_tolerance(values)
    assert tolerance == pytest.approx(1e-4 * values.std() + 1e-6 * 1e6 + 10 * 1e-6)
    assert regression_tolerance(np.array([0.5, 0.5])) == pytest.approx(1e-4 + 5e-7)
    native = Fixed("regression", values)
    assert check_parity(native, Fixed("regression", values.astype(np.float32)), ROWS).passed
    assert not check_parity(native, Fixed("regression", values + 5), ROWS).passed


def test_no_rows_is_not_a_pass():
    native = Fixed("binary", binary([]))
    assert not check_parity(native, native, ROWS.head(0)).passed


def test_shapes_that_differ_fail_with_the_reason():
    native = Fixed("multiclass", np.full((4, 3), 1 / 3), classes=[0, 1, 2])
    parity = check_parity(native, Fixed("multiclass", np.full((4, 2), 0.5)), ROWS)
    assert not parity.passed and "shape" in parity.detail
