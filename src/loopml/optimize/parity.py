"""Parity of an ONNX model with its native model: same rows in, same answers out?

The ONNX graph computes in float32 where the native model computes in float64 (the contract's
outputs are float), so answers are compared within a stated tolerance:

- probabilities: absolute 1e-4 — float32 rounding and a different summation order move a
  probability by ~1e-7; a tree sent down the wrong branch moves it by ~1e-2, so 1e-4 tells
  rounding from a real difference with room on both sides;
- regression values: ``1e-4 * max(1, std) + 1e-6 * max|value|`` of the native predictions —
  the first term scales 1e-4 to the target's spread (a price in dollars and one in millions
  get the same relative bar), the second allows float32's ~6e-8 relative rounding over a few
  operations on large values (2e9 cannot be told apart from 2e9 + 64 in float32).

Labels: a row whose native answer is within the tolerance of the decision boundary (binary:
``|p - threshold| <= tol``; multiclass: the two top probabilities within ``2 * tol``) may
flip by rounding alone, so a differing label there is reported as ``borderline`` and not
counted in ``label_mismatches``; every other differing label is a mismatch and fails parity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PROBABILITY_ATOL = 1e-4
REGRESSION_RTOL = 1e-4
FLOAT32_RTOL = 1e-6


@dataclass(frozen=True)
class Parity:
    """Whether two models agree on the same rows, by how much, and the bar they had to meet."""

    passed: bool
    rows: int
    max_abs_diff: float
    tolerance: float
    label_mismatches: int
    detail: str


def check_parity(native: Any, onnx_model: Any, frame: pd.DataFrame) -> Parity:
    """Return the parity of ``onnx_model`` with ``native`` on the rows of ``frame``.

    Examples
    --------
    >>> check_parity(trained, OnnxModel.from_bytes(to_onnx(trained)), test).passed
    ... # doctest: +SKIP
    True
    """
    import numpy as np

    rows = len(frame)
    if rows == 0:
        return Parity(False, 0, float("nan"), float("nan"), 0, "no rows to compare")
    if native.task == "regression":
        expected = np.asarray(native.predict(frame), dtype=np.float64).ravel()
        got = np.asarray(onnx_model.predict(frame), dtype=np.float64).ravel()
        tolerance = regression_tolerance(expected)
        diff = _max_diff(expected, got)
        passed = diff <= tolerance
        detail = (f"{rows} rows: largest difference {diff:.3g} (tolerance {tolerance:.3g} = "
                  f"1e-4 * max(1, std) + 1e-6 * max|value|)")
        return Parity(bool(passed), rows, diff, tolerance, 0, detail)
    expected = np.asarray(native.predict_proba(frame), dtype=np.float64)
    got = np.asarray(onnx_model.predict_proba(frame), dtype=np.float64)
    if expected.shape != got.shape:
        return Parity(False, rows, float("inf"), PROBABILITY_ATOL, rows,
                      f"probabilities of shape {got.shape}, the native model gives "
                      f"{expected.shape}")
    diff = _max_diff(expected, got)
    native_labels = np.asarray(native.predict(frame))
    onnx_labels = np.asarray(onnx_model.predict(frame))
    differ = native_labels.astype(str) != onnx_labels.astype(str)
    border = _borderline(expected, native.task, native.threshold, PROBABILITY_ATOL)
    mismatches = int((differ & ~border).sum())
    passed = diff <= PROBABILITY_ATOL and mismatches == 0
    detail = (f"{rows} rows: largest probability difference {diff:.3g} (tolerance "
              f"{PROBABILITY_ATOL:g}); {mismatches} label(s) differ"
              + (f", {int((differ & border).sum())} more on the decision boundary "
                 "(within tolerance, not counted)" if (differ & border).any() else ""))
    return Parity(bool(passed), rows, diff, PROBABILITY_ATOL, mismatches, detail)


def regression_tolerance(predictions: np.ndarray) -> float:
    """Return the absolute tolerance for regression values (see the module docstring).

    >>> round(regression_tolerance(__import__("numpy").array([0.0, 2.0])), 6)
    0.000102
    """
    import numpy as np

    values = np.asarray(predictions, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return REGRESSION_RTOL
    return float(REGRESSION_RTOL * max(1.0, finite.std())
                 + FLOAT32_RTOL * np.abs(finite).max())


def _max_diff(expected: np.ndarray, got: np.ndarray) -> float:
    import numpy as np

    if expected.shape != got.shape:
        return float("inf")
    both_nan = np.isnan(expected) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(expected - got))
    return float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0


def _borderline(proba: np.ndarray, task: str, threshold: float, tol: float) -> np.ndarray:
    import numpy as np

    if task == "binary":
        return np.abs(proba[:, 1] - threshold) <= tol
    top = np.sort(proba, axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0]) <= 2 * tol
