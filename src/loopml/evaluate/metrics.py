"""Metrics by task, computed with scikit-learn on the same predictions for every model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.config import METRICS
from loopml.train.scoring import score

if TYPE_CHECKING:
    import numpy as np


def all_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                *, labels: list[int] | None = None) -> dict[str, float]:
    """Return every metric of the task (encoded labels; ``proba`` one column per class)."""
    return {name: score(name, y_true, y_pred, proba, labels=labels) for name in METRICS[task]}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=labels).tolist()
