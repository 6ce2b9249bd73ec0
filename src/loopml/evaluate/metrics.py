"""The metric table: every metric loopml knows, once, with its task, direction and function.

Config validation, the search, evaluation and the model card all read this table, so adding
a metric is one entry in ``METRICS``. Functions take encoded labels (class indices) and
probabilities with one column per class, in the order of the model's classes.

>>> METRICS["rmse"].direction, METRICS["roc_auc"].needs_proba
(-1, True)
>>> metric_names("regression")
('rmse', 'mae', 'r2', 'mape')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput
from loopml.evaluate import resampled

if TYPE_CHECKING:
    import numpy as np

TASKS = ("binary", "multiclass", "regression")
Score = Callable[..., float]


@dataclass(frozen=True)
class Metric:
    """One metric: which tasks it fits, +1 if higher is better (-1 if lower), what it reads."""

    name: str
    tasks: tuple[str, ...]
    direction: int
    needs_proba: bool
    compute: Score  # (y_true, y_pred, proba, labels) -> float
    description: str
    # The same metric for many bootstrap resamples at once: (W, y_true, y_pred, proba,
    # labels) -> one value per resample (see evaluate/resampled.py); None: one call each.
    resampled: Callable[..., np.ndarray] | None = None


def _roc_auc(y, pred, proba, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, proba[:, 1])


def _pr_auc(y, pred, proba, labels):
    from sklearn.metrics import average_precision_score

    return average_precision_score(y, proba[:, 1])


def _log_loss(y, pred, proba, labels):
    from sklearn.metrics import log_loss

    return log_loss(y, proba, labels=labels)


def _brier(y, pred, proba, labels):
    from sklearn.metrics import brier_score_loss

    return brier_score_loss(y, proba[:, 1])


def _roc_auc_ovr(y, pred, proba, labels):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, proba, multi_class="ovr", labels=labels)


def _f1(y, pred, proba, labels):
    from sklearn.metrics import f1_score

    return f1_score(y, pred, zero_division=0.0)


def _f1_macro(y, pred, proba, labels):
    from sklearn.metrics import f1_score

    return f1_score(y, pred, average="macro", labels=labels, zero_division=0.0)


def _accuracy(y, pred, proba, labels):
    import numpy as np

    return float(np.mean(np.asarray(y) == np.asarray(pred)))


def _rmse(y, pred, proba, labels):
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(pred, float)) ** 2)))


def _mae(y, pred, proba, labels):
    import numpy as np

    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(pred, float))))


def _r2(y, pred, proba, labels):
    from sklearn.metrics import r2_score

    return r2_score(y, pred)


def _mape(y, pred, proba, labels):
    from sklearn.metrics import mean_absolute_percentage_error

    return mean_absolute_percentage_error(y, pred)


_B, _M, _R = ("binary",), ("multiclass",), ("regression",)
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("roc_auc", _B, 1, True, _roc_auc, "area under the ROC curve",
           resampled.roc_auc),
    Metric("pr_auc", _B, 1, True, _pr_auc, "average precision (area under precision-recall)",
           resampled.pr_auc),
    Metric("log_loss", _B + _M, -1, True, _log_loss, "cross-entropy of the probabilities",
           resampled.log_loss),
    Metric("f1", _B, 1, False, _f1, "F1 of the positive class at the decision threshold",
           resampled.f1),
    Metric("accuracy", _B + _M, 1, False, _accuracy, "share of rows labelled right",
           resampled.accuracy),
    Metric("brier", _B, -1, True, _brier, "mean squared error of the positive probability",
           resampled.brier),
    Metric("f1_macro", _M, 1, False, _f1_macro, "F1 averaged over classes",
           resampled.f1_macro),
    Metric("roc_auc_ovr", _M, 1, True, _roc_auc_ovr, "one-vs-rest ROC-AUC, macro average",
           resampled.roc_auc_ovr),
    Metric("rmse", _R, -1, False, _rmse, "root mean squared error",
           resampled.rmse),
    Metric("mae", _R, -1, False, _mae, "mean absolute error",
           resampled.mae),
    Metric("r2", _R, 1, False, _r2, "coefficient of determination",
           resampled.r2),
    Metric("mape", _R, -1, False, _mape, "mean absolute percentage error",
           resampled.mape),
)}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def metric_names(task: str | None = None) -> tuple[str, ...]:
    """Return the names of the metrics that fit ``task`` (all metrics when None)."""
    return tuple(name for name, m in METRICS.items() if task is None or task in m.tasks)


def get_metric(name: str, *, task: str | None = None) -> Metric:
    """Return the metric called ``name``; refuse an unknown one or one that does not fit ``task``.

    >>> get_metric("mae").description
    'mean absolute error'
    """
    if name not in METRICS:
        raise InvalidInput(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    metric = METRICS[name]
    if task is not None and task not in metric.tasks:
        raise InvalidInput(f"metric {name!r} does not fit a {task} task; choose from "
                           f"{', '.join(metric_names(task))}")
    return metric


def score(name: str, y_true: np.ndarray, y_pred: np.ndarray | None, proba: np.ndarray | None,
          *, labels: list[int] | None = None) -> float:
    """Return metric ``name`` of predictions (encoded labels; ``proba`` one column per class).

    >>> import numpy as np
    >>> score("mae", np.array([1.0, 2.0]), np.array([2.0, 2.0]), None)
    0.5
    """
    metric = get_metric(name)
    if metric.needs_proba and proba is None:
        raise InvalidInput(f"metric {name!r} needs predicted probabilities")
    return float(metric.compute(y_true, y_pred, proba, labels))


def all_metrics(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                *, labels: list[int] | None = None) -> dict[str, float | None]:
    """Return every metric of the task; None where a metric is undefined on these rows.

    A metric can be undefined on held-out rows (ROC-AUC when only one class is present);
    the reason is in :func:`undefined_reasons`.
    """
    out: dict[str, float | None] = {}
    for name in metric_names(task):
        try:
            value = score(name, y_true, y_pred, proba, labels=labels)
        except ValueError:
            value = None
        out[name] = value if value is None or value == value else None  # NaN -> None
    return out


def undefined_reasons(task: str, values: dict[str, float | None], y_true: np.ndarray
                      ) -> dict[str, str]:
    """Return why each metric in ``values`` that is None could not be computed."""
    import numpy as np

    classes = len(np.unique(y_true))
    reasons = {}
    for name, value in values.items():
        if value is not None:
            continue
        if task != "regression" and classes < 2:
            reasons[name] = "the rows hold a single class"
        elif task == "regression" and name == "r2" and len(y_true) < 2:
            reasons[name] = "fewer than two rows"
        else:
            reasons[name] = "undefined on these rows"
    return reasons


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> list[list[int]]:
    """Return the confusion matrix (rows: true class, columns: predicted), as lists."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=labels).tolist()
