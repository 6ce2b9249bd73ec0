"""Score predictions with one metric: the single place that maps metric names to sklearn."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def needs_proba(metric: str) -> bool:
    return metric in ("roc_auc", "pr_auc", "log_loss", "brier", "roc_auc_ovr")


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
          *, labels: list[int] | None = None) -> float:
    """Return ``metric`` of predictions (encoded labels; ``proba`` has one column per class)."""
    import numpy as np
    from sklearn import metrics as m

    if metric == "roc_auc":
        return float(m.roc_auc_score(y_true, proba[:, 1]))
    if metric == "pr_auc":
        return float(m.average_precision_score(y_true, proba[:, 1]))
    if metric == "log_loss":
        return float(m.log_loss(y_true, proba, labels=labels))
    if metric == "brier":
        return float(m.brier_score_loss(y_true, proba[:, 1]))
    if metric == "roc_auc_ovr":
        return float(m.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    if metric == "f1":
        return float(m.f1_score(y_true, y_pred))
    if metric == "f1_macro":
        return float(m.f1_score(y_true, y_pred, average="macro"))
    if metric == "accuracy":
        return float(m.accuracy_score(y_true, y_pred))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y_true, y_pred)))
    if metric == "mae":
        return float(m.mean_absolute_error(y_true, y_pred))
    if metric == "r2":
        return float(m.r2_score(y_true, y_pred))
    if metric == "mape":
        return float(m.mean_absolute_percentage_error(y_true, y_pred))
    raise ValueError(f"unknown metric {metric!r}")
