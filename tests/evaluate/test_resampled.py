"""The metric table's batched forms equal its plain functions on explicitly resampled rows."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.evaluate.metrics import METRICS, score
from loopml.registry.compare import _resample_counts


def _case(task: str, rows: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    if task == "binary":
        y = rng.integers(0, 2, rows)
        p = np.round(np.clip(0.3 * y + 0.7 * rng.random(rows), 0, 1), 2)  # rounding: ties
        return y, (p >= 0.5).astype(int), np.c_[1 - p, p], [0, 1]
    if task == "multiclass":
        y = rng.integers(0, 3, rows)
        raw = rng.random((rows, 3)) + 0.6 * np.eye(3)[y]
        proba = raw / raw.sum(axis=1, keepdims=True)
        return y, proba.argmax(axis=1), proba, [0, 1, 2]
    y = rng.normal(10, 3, rows)
    return y, y + rng.normal(0, 1, rows), None, None


@pytest.mark.parametrize("metric,task", [(name, task) for name, m in METRICS.items()
                                         for task in m.tasks])
def test_every_batched_metric_equals_the_plain_one_on_explicit_resamples(metric, task):
    batched = METRICS[metric].resampled
    assert batched is not None  # a new metric without one still works (one call per resample)
    y, pred, proba, labels = _case(task)
    rows = len(y)
    counts = np.vstack([np.ones(rows), _resample_counts(np.random.default_rng(1), rows, 20)])
    got = batched(counts, y, pred, proba, labels)
    for row, value in zip(counts, got, strict=True):
        take = np.repeat(np.arange(rows), row.astype(int))
        want = score(metric, y[take], pred[take], None if proba is None else proba[take],
                     labels=labels)
        assert value == pytest.approx(want, rel=1e-9, abs=1e-12)
