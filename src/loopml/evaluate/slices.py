"""The headline metric per slice: each value of each categorical input column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.evaluate.metrics import get_metric, score

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_VALUES = 10
MIN_ROWS = 20


def metric_by_slice(frame: pd.DataFrame, columns: list[str], *, metric: str, task: str,
                    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                    labels: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Return {column: [{value, count, metric}]} for the most common values of each column."""
    import numpy as np

    out: dict[str, list[dict[str, Any]]] = {}
    for column in columns:
        values = frame[column].astype("string").fillna("<missing>").to_numpy()
        rows = []
        for value in frame[column].astype("string").fillna("<missing>").value_counts().index[
                :MAX_VALUES]:
            mask = values == value
            entry: dict[str, Any] = {"value": str(value), "count": int(mask.sum()),
                                     metric: None}
            if mask.sum() >= MIN_ROWS:
                part_proba = proba[mask] if proba is not None else None
                try:
                    if get_metric(metric).needs_proba and task == "binary" and \
                            len(np.unique(y_true[mask])) < 2:
                        raise ValueError("one class only")
                    entry[metric] = score(metric, y_true[mask], y_pred[mask], part_proba,
                                          labels=labels)
                except ValueError:
                    entry[metric] = None  # undefined on this slice (e.g. a single class)
            rows.append(entry)
        out[column] = rows
    return out
