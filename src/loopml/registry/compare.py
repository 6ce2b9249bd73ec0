"""Compare two models fairly: on the same rows, neither trained on, with a paired bootstrap.

:func:`comparison_rows` picks the rows (the challenger's test rows minus any the champion
trained on, matched by content); :func:`paired_bootstrap` says whether the metric difference
on them is more than noise. Metrics come from the one table in ``evaluate/metrics.py``; the
bootstrap scores a block of resamples of every metric in it at once, as array operations
over rows weighted by how often each resample drew them, not one Python call a resample.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.evaluate.metrics import get_metric, score, undefined_reasons

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Resamples are drawn in blocks of about this many (resample, row) cells: ~32 MB of float64.
BLOCK_CELLS = 4_000_000


def comparison_rows(candidate_test: pd.DataFrame, champion_train: pd.DataFrame | None, *,
                    columns: list[str]) -> tuple[pd.DataFrame, str]:
    """Return the candidate's test rows that the champion never trained on, and a note.

    Rows are matched by content: a hash of ``columns`` (the input columns and the target),
    so the same row in another dataset version, file or order still matches. Numbers are
    compared as numbers (``1`` equals ``1.0``), everything else as text. With
    ``champion_train`` None the rows are kept as they are and the note says so.

    >>> import pandas as pd
    >>> test = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    >>> rows, note = comparison_rows(test, pd.DataFrame({"x": [2.0], "y": [1]}),
    ...                              columns=["x", "y"])
    >>> rows["x"].tolist(), note
    ([1, 3], "2 of the challenger's 3 test rows; 1 removed because the champion trained on them (matched on 2 columns)")
    """  # noqa: E501
    if not columns:
        raise InvalidInput("name the columns to match rows on (input columns and target)")
    for frame, whose in ((candidate_test, "challenger's test rows"),
                         (champion_train, "champion's training rows")):
        if frame is None:
            continue
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInput(f"the {whose} lack column(s) {', '.join(map(repr, missing))}, "
                               "needed to match rows between the models; pass the columns "
                               "both models share (input columns and target)")
    total = len(candidate_test)
    if champion_train is None:
        return candidate_test, (f"the challenger's {total} test rows; the champion's training "
                                "rows are unknown, so some may be rows it trained on")
    import numpy as np

    # numpy on both uint64 arrays: a Python set of hashes above 2**63 would go through floats
    keep = ~np.isin(_row_hashes(candidate_test, columns).to_numpy(),
                    _row_hashes(champion_train, columns).to_numpy())
    kept = int(keep.sum())
    note = f"{kept} of the challenger's {total} test rows"
    if kept < total:
        note += (f"; {total - kept} removed because the champion trained on them "
                 f"(matched on {len(columns)} columns)")
    else:
        note += " (none of them are among the champion's training rows)"
    return candidate_test[keep], note


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Return one 64-bit hash per row of ``frame[columns]``, independent of dtype width."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    normalized = {}
    for name in columns:
        column = frame[name]
        if is_numeric_dtype(column) and not is_bool_dtype(column):
            normalized[name] = column.astype("float64")
        else:  # text, categories, booleans, dates: by their text, so dtypes need not agree
            normalized[name] = column.astype("string")
    table = pd.DataFrame({k: v.reset_index(drop=True) for k, v in normalized.items()})
    table.columns = range(len(columns))  # names may repeat or be odd; order is what matters
    return pd.util.hash_pandas_object(table, index=False)


def paired_bootstrap(y_true: np.ndarray, pred_a: np.ndarray | None, pred_b: np.ndarray | None,
                     *, metric: str, task: str, n: int = 1000, seed: int = 0,
                     proba_a: np.ndarray | None = None, proba_b: np.ndarray | None = None,
                     labels: list[int] | None = None, confidence: float = 0.95
                     ) -> dict[str, Any]:
    """Return how much better model b is than model a on the same rows, and whether by chance.

    Rows are resampled with replacement ``n`` times; each resample scores both models on
    the same rows. The delta is b − a in the metric's "better" direction (above 0: b is
    better), so ``rmse`` and ``roc_auc`` read the same way. Resamples where the metric is
    undefined for either model (one class drawn, for ROC-AUC) are skipped and counted.

    Returns ``metric``, ``a`` and ``b`` (the metric on all rows), ``delta`` (observed),
    ``mean_delta`` (over resamples), ``ci`` (the percentile interval of the delta at
    ``confidence``), ``p_value`` (one-sided: the share of resamples where b is not better,
    ``(k + 1) / (valid + 1)``), ``lower``/``upper`` (one-sided bounds at ``confidence``),
    ``resamples`` (valid ones) and ``skipped``.

    Inputs are encoded as in ``evaluate/metrics.py``: class indices and probabilities with
    one column per class for classification, numbers for regression.

    >>> import numpy as np
    >>> y = np.array([1.0, 2.0, 3.0, 4.0])
    >>> out = paired_bootstrap(y, y + 1, y + 0.5, metric="mae", task="regression", n=200)
    >>> out["delta"], out["ci"][0] > 0
    (0.5, True)
    """
    import numpy as np

    spec = get_metric(metric, task=task)
    if not 0 < confidence < 1:
        raise InvalidInput(f"confidence must be between 0 and 1, got {confidence}")
    if n < 1:
        raise InvalidInput(f"the number of resamples must be at least 1, got {n}")
    y = np.asarray(y_true)
    rows = len(y)
    if rows == 0:
        raise InvalidInput(f"no rows to compare the models on ({metric})")
    a_full, b_full = (_observed(metric, task, y, pred, proba, labels)
                      for pred, proba in ((pred_a, proba_a), (pred_b, proba_b)))
    direction = spec.direction
    weighted = _WEIGHTED.get(metric)
    args_a = _prepared(y, pred_a, proba_a, labels)
    args_b = _prepared(y, pred_b, proba_b, labels)
    rng = np.random.default_rng(seed)
    deltas = []
    block = max(1, BLOCK_CELLS // rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n, block):
            counts = _resample_counts(rng, rows, min(block, n - start))
            if weighted is not None:
                ma, mb = weighted(counts, *args_a), weighted(counts, *args_b)
            else:
                ma, mb = (_loop(metric, counts, y, pred, proba, labels)
                          for pred, proba in ((pred_a, proba_a), (pred_b, proba_b)))
            deltas.append(direction * (mb - ma))
    delta = np.concatenate(deltas)
    valid = delta[np.isfinite(delta)]
    out: dict[str, Any] = {
        "metric": metric, "direction": direction, "rows": rows, "a": a_full, "b": b_full,
        "delta": direction * (b_full - a_full), "confidence": confidence,
        "requested": n, "resamples": int(valid.size), "skipped": int(n - valid.size),
        "mean_delta": None, "ci": None, "lower": None, "upper": None, "p_value": None,
    }
    if valid.size:
        tail = (1 - confidence) / 2
        out.update(
            mean_delta=float(valid.mean()),
            ci=[float(np.quantile(valid, tail)), float(np.quantile(valid, 1 - tail))],
            lower=float(np.quantile(valid, 1 - confidence)),
            upper=float(np.quantile(valid, confidence)),
            p_value=float((np.count_nonzero(valid <= 0) + 1) / (valid.size + 1)),
        )
    return out


def _observed(metric: str, task: str, y: np.ndarray, pred: np.ndarray | None,
              proba: np.ndarray | None, labels: list[int] | None) -> float:
    """Return the metric on all rows, or refuse with the reason it is undefined there."""
    value: float | None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined cases are reported below instead
            value = score(metric, y, pred, proba, labels=labels)
    except ValueError:
        value = None
    if value is None or value != value:
        reason = undefined_reasons(task, {metric: None}, y)[metric]
        raise InvalidInput(f"{metric} cannot be computed on these rows: {reason}")
    return value


def _resample_counts(rng: np.random.Generator, rows: int, resamples: int) -> np.ndarray:
    """Return how often each row is drawn in each resample: shape (resamples, rows)."""
    import numpy as np

    drawn = rng.integers(0, rows, size=(resamples, rows))
    drawn += (np.arange(resamples) * rows)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * rows).reshape(
        resamples, rows).astype(float)


def _loop(metric: str, counts: np.ndarray, y: np.ndarray, pred: np.ndarray | None,
          proba: np.ndarray | None, labels: list[int] | None) -> np.ndarray:
    """Return the metric of each resample, one call each: for metrics with no weighted form."""
    import numpy as np

    out = np.full(len(counts), np.nan)
    positions = np.arange(counts.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, row in enumerate(counts):
            take = np.repeat(positions, row.astype(int))
            with contextlib.suppress(ValueError):  # undefined here: stays NaN, skipped
                out[i] = score(metric, y[take], None if pred is None else pred[take],
                               None if proba is None else proba[take], labels=labels)
    return out


# -- the metrics of evaluate/metrics.py, for many resamples at once -----------------------------
# Each takes W (resamples x rows: how often each row was drawn) and the prepared arrays, and
# returns one value per resample, NaN where the metric is undefined. Each equals the table's
# function on the resampled rows (tests/registry/test_compare.py checks every one).

Prepared = tuple[Any, ...]


def _prepared(y: np.ndarray, pred: np.ndarray | None, proba: np.ndarray | None,
              labels: list[int] | None) -> Prepared:
    import numpy as np

    return (y, None if pred is None else np.asarray(pred),
            None if proba is None else np.asarray(proba, dtype=float), labels)


def _mean(W: np.ndarray, per_row: np.ndarray) -> np.ndarray:
    return W @ per_row / W.shape[1]


def _errors(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)


def _w_rmse(W, y, pred, proba, labels):
    import numpy as np

    return np.sqrt(_mean(W, _errors(y, pred) ** 2))


def _w_mae(W, y, pred, proba, labels):
    import numpy as np

    return _mean(W, np.abs(_errors(y, pred)))


def _w_mape(W, y, pred, proba, labels):
    import numpy as np

    # sklearn's definition: |y - pred| / max(|y|, machine epsilon)
    scale = np.maximum(np.abs(np.asarray(y, dtype=float)), np.finfo(np.float64).eps)
    return _mean(W, np.abs(_errors(y, pred)) / scale)


def _w_r2(W, y, pred, proba, labels):
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


def _w_accuracy(W, y, pred, proba, labels):
    import numpy as np

    return _mean(W, (np.asarray(y) == np.asarray(pred)).astype(float))


def _w_brier(W, y, pred, proba, labels):
    return _mean(W, (proba[:, 1] - (y == 1)) ** 2)


def _w_log_loss(W, y, pred, proba, labels):
    import numpy as np

    eps = np.finfo(np.float64).eps  # sklearn clips probabilities the same way
    picked = np.clip(proba[np.arange(len(y)), y], eps, 1 - eps)
    return _mean(W, -np.log(picked))


def _f1_from(tp, fp, fn):
    import numpy as np

    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)


def _w_f1(W, y, pred, proba, labels):
    truth, guess = (y == 1).astype(float), (pred == 1).astype(float)
    return _f1_from(W @ (truth * guess), W @ ((1 - truth) * guess), W @ (truth * (1 - guess)))


def _w_f1_macro(W, y, pred, proba, labels):
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


def _w_roc_auc(W, y, pred, proba, labels):
    return _auc(proba[:, 1], y == 1, W)


def _w_roc_auc_ovr(W, y, pred, proba, labels):
    import numpy as np

    classes = labels if labels is not None else list(range(proba.shape[1]))
    # Macro average; a class absent from a resample makes it undefined (as in sklearn).
    return np.mean([_auc(proba[:, k], y == c, W) for k, c in enumerate(classes)], axis=0)


def _w_pr_auc(W, y, pred, proba, labels):
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


_WEIGHTED: dict[str, Callable[..., np.ndarray]] = {
    "rmse": _w_rmse, "mae": _w_mae, "mape": _w_mape, "r2": _w_r2,
    "accuracy": _w_accuracy, "brier": _w_brier, "log_loss": _w_log_loss,
    "f1": _w_f1, "f1_macro": _w_f1_macro,
    "roc_auc": _w_roc_auc, "roc_auc_ovr": _w_roc_auc_ovr, "pr_auc": _w_pr_auc,
}
