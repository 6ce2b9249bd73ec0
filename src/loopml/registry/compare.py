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
    batched = spec.resampled
    if batched is not None:
        from loopml.evaluate.resampled import prepared

        args_a, args_b = prepared(y, pred_a, proba_a, labels), prepared(y, pred_b, proba_b, labels)
    rng = np.random.default_rng(seed)
    deltas = []
    block = max(1, BLOCK_CELLS // rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n, block):
            counts = _resample_counts(rng, rows, min(block, n - start))
            if batched is not None:  # the table's form for many resamples at once
                ma, mb = batched(counts, *args_a), batched(counts, *args_b)
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
    """Return the metric of each resample, one call each: for metrics with no batched form."""
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
