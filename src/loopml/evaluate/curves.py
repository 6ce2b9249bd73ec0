"""ROC, precision-recall and calibration curves, as plain lists ready for JSON and plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_POINTS = 200


def _thin(*series: Any) -> list[list[float]]:
    import numpy as np

    length = len(series[0])
    index = np.unique(np.linspace(0, length - 1, min(length, MAX_POINTS)).astype(int))
    return [np.asarray(s)[index].astype(float).tolist() for s in series]


def binary_curves(y_true: np.ndarray, positive_proba: np.ndarray) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y_true, positive_proba)
    precision, recall, _ = precision_recall_curve(y_true, positive_proba)
    true_share, predicted = calibration_curve(y_true, positive_proba, n_bins=10,
                                              strategy="quantile")
    roc = _thin(fpr, tpr)
    pr = _thin(recall, precision)
    return {
        "roc": {"fpr": roc[0], "tpr": roc[1]},
        "pr": {"recall": pr[0], "precision": pr[1]},
        "calibration": {"predicted": predicted.tolist(), "observed": true_share.tolist()},
    }


def choose_threshold(y_true: np.ndarray, positive_proba: np.ndarray, metric: str
                     ) -> tuple[float, float]:
    """Return the decision threshold that maximises F1 (or accuracy) and the value it reaches.

    Threshold-free metrics (ROC-AUC, log-loss …) do not pick a threshold, so F1 decides,
    unless the metric itself is accuracy.
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    candidates = np.unique(np.quantile(positive_proba, np.linspace(0.01, 0.99, 99)))
    judge = accuracy_score if metric == "accuracy" else f1_score
    scores = [judge(y_true, (positive_proba >= t).astype(int)) for t in candidates]
    best = int(np.argmax(scores))
    return float(candidates[best]), float(scores[best])
