"""Evaluate a trained model on held-out rows: the same code for every model and task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.evaluate.curves import binary_curves
from loopml.evaluate.explain import explain
from loopml.evaluate.fairness import group_rates
from loopml.evaluate.metrics import all_metrics, confusion
from loopml.evaluate.slices import metric_by_slice

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.train.model import TrainedModel


def evaluate(model: TrainedModel, frame: pd.DataFrame, y_encoded: np.ndarray, *, metric: str,
             sensitive: list[str], slice_columns: list[str], seed: int = 0) -> dict[str, Any]:
    """Return metrics, curves, confusion matrix, slices, fairness and explanations as a dict."""
    import numpy as np

    labels = list(range(len(model.classes))) if model.task != "regression" else None
    inputs = frame[model.input_columns]
    out: dict[str, Any] = {"rows": len(frame), "task": model.task, "metric": metric}
    if model.task == "regression":
        predicted = model.pipeline.predict(inputs)
        proba = None
    else:
        proba = model.pipeline.predict_proba(inputs)
        predicted = (proba[:, 1] >= model.threshold).astype(int) if model.task == "binary" \
            else proba.argmax(axis=1)
    out["metrics"] = all_metrics(model.task, y_encoded, predicted, proba, labels=labels)
    if model.task != "regression":
        out["classes"] = [str(c) for c in model.classes]
        out["confusion_matrix"] = confusion(y_encoded, predicted, labels)
    if model.task == "binary":
        out["threshold"] = model.threshold
        out["curves"] = binary_curves(y_encoded, proba[:, 1])
    else:
        out["residuals"] = _residuals(y_encoded, predicted) if model.task == "regression" \
            else None
    out["slices"] = metric_by_slice(frame, slice_columns, metric=metric, task=model.task,
                                    y_true=y_encoded, y_pred=predicted, proba=proba,
                                    labels=labels or [])
    if model.task == "binary" and sensitive:
        out["fairness"] = {column: group_rates(y_encoded, predicted, frame[column])
                           for column in sensitive}
    else:
        out["fairness"] = {}
    out["explanations"] = explain(model, frame, np.asarray(y_encoded), metric=metric, seed=seed)
    return out


def _residuals(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, list[float]]:
    import numpy as np

    errors = np.asarray(y_true, dtype=float) - np.asarray(predicted, dtype=float)
    counts, edges = np.histogram(errors, bins=30)
    return {"edges": edges.tolist(), "counts": counts.tolist()}
