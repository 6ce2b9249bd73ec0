"""Evaluate any model on held-out rows: the same code for every model and task.

The model is any object with ``predict`` (regression) or ``predict_proba`` (classes, one
column per class in the order of ``classes``); loopml's trained models also offer exact
TreeSHAP through ``feature_contributions``. Labels are the target's own values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.evaluate.curves import binary_curves
from loopml.evaluate.explain import explain
from loopml.evaluate.fairness import group_rates
from loopml.evaluate.metrics import all_metrics, confusion, get_metric, undefined_reasons
from loopml.evaluate.slices import metric_by_slice

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import pandas as pd


def encode_labels(y_true: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Return each label's index in ``classes``; a label the model never saw is an error.

    >>> encode_labels(["no", "yes", "no"], ["no", "yes"]).tolist()
    [0, 1, 0]
    """
    import numpy as np

    lookup = {value: index for index, value in enumerate(classes)}
    values = list(y_true)
    unknown = sorted({str(v) for v in values if v not in lookup})
    if unknown:
        raise InvalidInput(f"the labels hold {len(unknown)} value(s) the model does not know "
                           f"(e.g. {unknown[0]!r}); its classes are "
                           f"{', '.join(str(c) for c in classes)}")
    return np.array([lookup[v] for v in values], dtype=int)


def evaluate(model: Any, frame: pd.DataFrame, y_true: Sequence[Any], *, task: str, metric: str,
             input_columns: list[str], classes: Sequence[Any] = (), threshold: float = 0.5,
             sensitive: Sequence[str] = (), slice_columns: Sequence[str] = (),
             seed: int = 0, explain_seconds: float | None = None) -> dict[str, Any]:
    """Return metrics, curves, confusion matrix, slices, fairness and explanations as a dict.

    ``threshold`` decides the positive class of a binary model from its probability.
    Metrics undefined on these rows are None, with the reason under ``undefined``.
    ``explain_seconds`` bounds permutation importance (fewer rows and repeats, said in the
    result) so that the explanations fit in what a time budget leaves.
    """
    import numpy as np

    get_metric(metric, task=task)
    classes = list(classes)
    if task != "regression" and len(classes) < 2:
        raise InvalidInput(f"a {task} model needs its classes (got {classes})")
    y = encode_labels(y_true, classes) if task != "regression" else \
        np.asarray(y_true, dtype=float)
    labels = list(range(len(classes))) if task != "regression" else None

    def predictions(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        inputs = rows[input_columns]
        if task == "regression":
            return np.asarray(model.predict(inputs), dtype=float), None
        proba = np.asarray(model.predict_proba(inputs), dtype=float)
        if task == "binary":
            return (proba[:, 1] >= threshold).astype(int), proba
        return proba.argmax(axis=1), proba

    predicted, proba = predictions(frame)
    out: dict[str, Any] = {"rows": len(frame), "task": task, "metric": metric}
    out["metrics"] = all_metrics(task, y, predicted, proba, labels=labels)
    out["undefined"] = undefined_reasons(task, out["metrics"], y)
    if task != "regression":
        out["classes"] = [str(c) for c in classes]
        out["confusion_matrix"] = confusion(y, predicted, labels)
    if task == "binary":
        out["threshold"] = threshold
        out["curves"] = binary_curves(y, proba[:, 1]) if len(np.unique(y)) == 2 else None
    else:
        out["residuals"] = _residuals(y, predicted) if task == "regression" else None
    out["slices"] = metric_by_slice(frame, list(slice_columns), metric=metric, task=task,
                                    y_true=y, y_pred=predicted, proba=proba,
                                    labels=labels or [])
    out["fairness"] = {column: group_rates(y, predicted, frame[column])
                       for column in sensitive} if task == "binary" else {}
    out["explanations"] = explain(model, frame, y, input_columns=input_columns,
                                  predictions=predictions, metric=metric, labels=labels,
                                  seed=seed, seconds=explain_seconds)
    return out


def _residuals(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, list[float]]:
    import numpy as np

    errors = np.asarray(y_true, dtype=float) - np.asarray(predicted, dtype=float)
    counts, edges = np.histogram(errors, bins=30)
    return {"edges": edges.tolist(), "counts": counts.tolist()}
