"""Performance before labels arrive: calibrated confidence, as NannyML's CBPE estimates it.

A classifier's probability says how likely each answer is right. Once those probabilities
are *calibrated* (a row given 0.8 is right 80% of the time), the expected confusion matrix
of a window follows from them alone: every predicted positive adds its calibrated
probability to the expected true positives and the rest to the false positives, and so on.
Metrics computed on that expected matrix estimate the realised ones, without labels, as
long as the link between confidence and correctness holds (covariate shift, not concept
shift). The calibration is fitted once per model version, on its test split.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=20000)
>>> y = (rng.uniform(size=p.size) < p).astype(int)      # a calibrated model
>>> proba = np.column_stack([1 - p, p])
>>> cal = Calibrator.fit("binary", y, proba)
>>> est = estimate_metrics("binary", [0, 1], proba, cal, threshold=0.5)
>>> round(est["accuracy"], 2), abs(est["roc_auc"] - 5 / 6) < 0.01   # the true values
(0.75, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

CALIBRATOR_VERSION = 1


@dataclass(frozen=True)
class Calibrator:
    """Per-class isotonic calibration of a classifier's probabilities, JSON-ready.

    ``curves`` holds one increasing step curve per calibrated class (binary: the positive
    class only), as the ``(x, y)`` thresholds of scikit-learn's ``IsotonicRegression``
    (``out_of_bounds="clip"``); :meth:`transform` interpolates them the same way.
    """

    task: str
    classes: int
    curves: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]
    rows: int

    @classmethod
    def fit(cls, task: str, y_index: Sequence[int] | np.ndarray,
            probabilities: np.ndarray) -> Calibrator:
        """Return a calibrator fitted on class indices and the probabilities the model gave."""
        import numpy as np
        from sklearn.isotonic import IsotonicRegression

        proba = _matrix(probabilities)
        y = np.asarray(y_index, dtype=np.int64)
        if task not in ("binary", "multiclass"):
            raise InvalidInput(f"a calibrator is for classifiers; task {task!r} has none")
        if len(y) != len(proba) or len(y) == 0:
            raise InvalidInput(f"calibration needs labelled rows with probabilities; got "
                               f"{len(y)} labels and {len(proba)} rows of probabilities")
        k = proba.shape[1]
        if (y < 0).any() or (y >= k).any():
            raise InvalidInput(f"calibration labels must be class indices 0..{k - 1}")
        columns = [1] if task == "binary" else range(k)
        curves = []
        for c in columns:
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0,
                                     increasing=True)
            iso.fit(proba[:, c], (y == c).astype(float))
            curves.append((tuple(map(float, iso.X_thresholds_)),
                           tuple(map(float, iso.y_thresholds_))))
        return cls(task=task, classes=k, curves=tuple(curves), rows=len(y))

    def transform(self, probabilities: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities (n, classes); rows sum to 1."""
        import numpy as np

        proba = _matrix(probabilities)
        if proba.shape[1] != self.classes:
            raise InvalidInput(f"the calibrator knows {self.classes} classes, the "
                               f"probabilities have {proba.shape[1]} columns")
        if self.task == "binary":
            x, y = self.curves[0]
            positive = np.interp(proba[:, 1], x, y)
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack([np.interp(proba[:, c], x, y)
                               for c, (x, y) in enumerate(self.curves)])
        total = out.sum(axis=1, keepdims=True)
        # A row every curve calls impossible keeps the model's own probabilities.
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), proba)

    def to_json(self) -> dict[str, Any]:
        """Return the calibrator as plain JSON (no pickle)."""
        return {"version": CALIBRATOR_VERSION, "task": self.task, "classes": self.classes,
                "rows": self.rows,
                "curves": [{"x": list(x), "y": list(y)} for x, y in self.curves]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibrator:
        """Return the calibrator :meth:`to_json` wrote."""
        try:
            curves = tuple((tuple(map(float, c["x"])), tuple(map(float, c["y"])))
                           for c in data["curves"])
            calibrator = cls(task=str(data["task"]), classes=int(data["classes"]),
                             curves=curves, rows=int(data.get("rows", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"a stored calibrator is not readable ({exc}); monitor the "
                               "version again to rebuild its reference") from exc
        if any(len(x) != len(y) or not x for x, y in curves):
            raise InvalidInput("a stored calibrator has a curve without points")
        return calibrator


def estimate_metrics(task: str, labels: Sequence[Any], probabilities: np.ndarray | None,
                     calibrator: Calibrator | None, *, threshold: float | None = 0.5
                     ) -> dict[str, float | None] | None:
    """Return the metrics expected from calibrated confidence (CBPE); None for regression.

    Binary: the expected confusion matrix at ``threshold`` (on the model's own positive
    probability, as it decides) gives accuracy, precision, recall and f1; expected ROC-AUC,
    Brier score and log loss come from the calibrated probabilities. Multiclass: expected
    accuracy, macro f1, macro one-vs-rest ROC-AUC and log loss. A metric the rows leave
    undefined (no predicted positive: precision) is None.
    """
    import numpy as np

    if task == "regression" or probabilities is None or calibrator is None:
        return None
    proba = _matrix(probabilities)
    if len(proba) == 0:
        return None
    expected = calibrator.transform(proba)
    if task == "binary":
        cut = 0.5 if threshold is None else float(threshold)
        p, q = proba[:, 1], expected[:, 1]
        positive = p >= cut
        tp, fp = float(q[positive].sum()), float((1 - q[positive]).sum())
        fn, tn = float(q[~positive].sum()), float((1 - q[~positive]).sum())
        n = len(p)
        return {
            "roc_auc": expected_roc_auc(p, q),
            "accuracy": (tp + tn) / n,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "brier": float(np.mean(q * (1 - p) ** 2 + (1 - q) * p ** 2)),
            "log_loss": _expected_log_loss(proba, expected),
        }
    if task != "multiclass":
        raise InvalidInput(f"task {task!r} is not one of binary, multiclass, regression")
    predicted = proba.argmax(axis=1)
    rows = np.arange(len(proba))
    f1s, aucs = [], []
    for c in range(proba.shape[1]):
        mine = predicted == c
        tp = float(expected[mine, c].sum())
        fp = float((1 - expected[mine, c]).sum())
        fn = float(expected[~mine, c].sum())
        f1s.append(_ratio(2 * tp, 2 * tp + fp + fn) or 0.0)
        aucs.append(expected_roc_auc(proba[:, c], expected[:, c]))
    defined = [a for a in aucs if a is not None]
    return {
        "accuracy": float(expected[rows, predicted].mean()),
        "f1_macro": float(np.mean(f1s)),
        "roc_auc_ovr": float(np.mean(defined)) if len(defined) == len(aucs) else None,
        "log_loss": _expected_log_loss(proba, expected),
    }


def expected_roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Return the ROC-AUC expected when row i is positive with probability ``positive[i]``.

    The rows are ranked by the model's own ``scores`` (as the realised ROC-AUC ranks them)
    and each pair counts with the chance that one is positive and the other negative: the
    area under the expected ROC curve whose points are the expected true and false positive
    rates at every threshold, as NannyML's CBPE builds it. Ties count one half.

    >>> import numpy as np
    >>> expected_roc_auc(np.array([0.1, 0.9]), np.array([0.0, 1.0]))
    1.0
    """
    import numpy as np

    s = np.asarray(scores, dtype=float)
    w = np.clip(np.asarray(positive, dtype=float), 0.0, 1.0)
    pos_total, neg_total = float(w.sum()), float((1 - w).sum())
    if pos_total <= 0 or neg_total <= 0:
        return None
    distinct, group = np.unique(s, return_inverse=True)
    pos = np.bincount(group, weights=w, minlength=len(distinct))
    neg = np.bincount(group, weights=1 - w, minlength=len(distinct))
    below = np.cumsum(neg) - neg  # negatives ranked strictly lower than each group
    area = float(np.sum(pos * below) + 0.5 * np.sum(pos * neg))
    return area / (pos_total * neg_total)


def _expected_log_loss(proba: np.ndarray, expected: np.ndarray) -> float:
    """Return the mean cross-entropy of ``proba`` when classes fall as ``expected`` says."""
    import numpy as np

    eps = np.finfo(proba.dtype).eps  # as scikit-learn's log_loss clips
    clipped = np.clip(proba, eps, 1 - eps)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(np.mean(-(expected * np.log(clipped)).sum(axis=1)))


def _ratio(top: float, bottom: float) -> float | None:
    return top / bottom if bottom > 0 else None


def _matrix(probabilities: Any) -> np.ndarray:
    """Return probabilities as a float (n, k) matrix (from numpy, lists or an Arrow list column)."""
    import numpy as np
    import pyarrow as pa

    if isinstance(probabilities, (pa.Array, pa.ChunkedArray)):
        column = probabilities.combine_chunks() if isinstance(probabilities, pa.ChunkedArray) \
            else probabilities
        if column.null_count:
            raise InvalidInput("probabilities are missing on some rows; pass only rows of a "
                               "model that logged them")
        width = len(column[0].as_py()) if len(column) else 0
        flat = column.flatten().to_numpy(zero_copy_only=False)
        if width == 0 or len(flat) != width * len(column):
            raise InvalidInput("probabilities: every row needs one value per class")
        return np.asarray(flat, dtype=float).reshape(len(column), width)
    matrix = np.asarray(probabilities, dtype=float)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise InvalidInput(f"probabilities must be an (n rows, k classes) matrix with k >= 2, "
                           f"got shape {matrix.shape}")
    return matrix
