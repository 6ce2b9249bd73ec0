"""The metrics of the metric table, computed for many bootstrap resamples at once.

Each function takes ``W`` (resamples × rows: how often each row was drawn) and the encoded
arrays the table's own function takes (``y``, ``pred``, ``proba``, ``labels``), and returns
one value per resample, NaN where the metric is undefined. Each equals the table's function
on the explicitly resampled rows (tests/evaluate/test_resampled.py checks every one); the
table in :mod:`loopml.evaluate.metrics` names them beside the plain functions, so a paired
bootstrap of 1,000 resamples costs about as much as a few hundred plain calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

Prepared = tuple[Any, ...]


def prepared(y: np.ndarray, pred: np.ndarray | None, proba: np.ndarray | None,
              labels: list[int] | None) -> Prepared:
    import numpy as np

    return (y, None if pred is None else np.asarray(pred),
            None if proba is None else np.asarray(proba, dtype=float), labels)


def _mean(W: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    return W @ per_row / W.shape[1]


def _errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)


def rmse(W, y, pred, proba, labels):
    import numpy as np

    return np.sqrt(_mean(W, _errors(y, pred) ** 2))


def mae(W, y, pred, proba, labels):
    import numpy as np

    return _mean(W, np.abs(_errors(y, pred)))


def mape(W, y, pred, proba, labels):
    import numpy as np

    # sklearn's definition: |y - pred| / max(|y|, machine epsilon)
    scale = np.maximum(np.abs(np.asarray(y, dtype=float)), np.finfo(np.float64).eps)
    return _mean(W, np.abs(_errors(y, pred)) / scale)


def r2(W, y, pred, proba, labels):
    import numpy as np

    y = np.asarray(y, dtype=float)
    centred = y - y.mean()  # centring first keeps the sums of squares accurate
    sse = W @ _errors(y, pred) ** 2
    total = W.sum(axis=1)
    sst = W @ centred**2 - (W @ centred) ** 2 / total
    # sklearn: constant targets give 1.0 for a perfect fit, else 0.0; fewer than 2 rows, NaN
    out = np.where(sst > 1e-12 * np.maximum(W @ y**2, 1e-300), 1 - sse / sst,
                   np.where(sse == 0, 1.0, 0.0))
    return np.where(total < 2, np.nan, out)


def accuracy(W, y, pred, proba, labels):
    import numpy as np

    return _mean(W, (np.asarray(y) == np.asarray(pred)).astype(float))


def brier(W, y, pred, proba, labels):
    return _mean(W, (proba[:, 1] - (y == 1)) ** 2)


def log_loss(W, y, pred, proba, labels):
    import numpy as np

    eps = np.finfo(np.float64).eps  # sklearn clips probabilities the same way
    picked = np.clip(proba[np.arange(len(y)), y], eps, 1 - eps)
    return _mean(W, -np.log(picked))


def _f1_from(tp, fp, fn):
    import numpy as np

    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)


def f1(W, y, pred, proba, labels):
    truth, guess = (y == 1).astype(float), (pred == 1).astype(float)
    return _f1_from(W @ (truth * guess), W @ ((1 - truth) * guess), W @ (truth * (1 - guess)))


def f1_macro(W, y, pred, proba, labels):
    import numpy as np

    classes = np.asarray(labels if labels is not None else np.unique(np.r_[y, pred]))
    truth = (y[:, None] == classes[None, :]).astype(float)
    guess = (pred[:, None] == classes[None, :]).astype(float)
    per_class = _f1_from(W @ (truth * guess), W @ ((1 - truth) * guess),
                         W @ (truth * (1 - guess)))
    return per_class.mean(axis=1)


def _sorted_groups(score_values: np.ndarray, positive: np.ndarray, W: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return drawn positives and negatives per distinct score, in ascending score order."""
    import numpy as np

    order = np.argsort(score_values, kind="mergesort")
    ordered = score_values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    drawn = W[:, order]
    positives = drawn * positive[order]
    if len(starts) < len(ordered):  # ties: one column per distinct score
        positives = np.add.reduceat(positives, starts, axis=1)
        drawn = np.add.reduceat(drawn, starts, axis=1)
    return positives, drawn - positives


def _auc(score_values: np.ndarray, positive: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Return the ROC-AUC per resample (ties count one half), NaN without both classes."""
    import numpy as np

    positives, negatives = _sorted_groups(score_values, positive, W)
    below = np.cumsum(negatives, axis=1) - negatives
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    won = (positives * (below + 0.5 * negatives)).sum(axis=1)
    return np.where(pairs > 0, won / np.where(pairs > 0, pairs, 1), np.nan)


def roc_auc(W, y, pred, proba, labels):
    return _auc(proba[:, 1], y == 1, W)


def roc_auc_ovr(W, y, pred, proba, labels):
    import numpy as np

    classes = labels if labels is not None else list(range(proba.shape[1]))
    # Macro average; a class absent from a resample makes it undefined (as in sklearn).
    return np.mean([_auc(proba[:, k], y == c, W) for k, c in enumerate(classes)], axis=0)


def pr_auc(W, y, pred, proba, labels):
    import numpy as np

    positives, negatives = _sorted_groups(proba[:, 1], y == 1, W)
    positives, negatives = positives[:, ::-1], negatives[:, ::-1]  # highest score first
    tp, fp = np.cumsum(positives, axis=1), np.cumsum(negatives, axis=1)
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
    total = tp[:, -1]
    # Average precision: precision at each threshold, weighted by the recall it adds.
    return np.where(total > 0, (positives * precision).sum(axis=1) / np.where(
        total > 0, total, 1), np.nan)

