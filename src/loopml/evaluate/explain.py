"""Explanations: exact TreeSHAP for LightGBM and XGBoost, permutation importance otherwise.

Any model can be explained. A model that offers ``feature_contributions(frame)`` (loopml's
trained models do, from the boosters' own TreeSHAP) gives exact per-row contributions per
input column; any other object with ``predict``/``predict_proba`` gets permutation
importance, measured with the metric being optimised.

SHAP values come from the boosters' ``pred_contrib`` in the model's raw output (log-odds
for classes, the value for regression), so for every row they add up to the raw
prediction minus the expected value. Contributions of the columns the preprocessing made
from one input column (one-hot levels, date parts, missing flags) are summed back to that
input column, which keeps the additivity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.evaluate.metrics import get_metric, score

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ROWS_SHOWN = 5
MAX_ROWS = 2000
PERMUTATION_ROWS = 1000  # permutation importance predicts columns × repeats times
PERMUTATION_REPEATS = 3
BATCH_ROWS = 50_000  # rows of shuffled copies scored in one call to the model

# (frame) -> (encoded predictions, probabilities or None): what permutation importance scores
Predictions = Callable[["pd.DataFrame"], "tuple[np.ndarray, np.ndarray | None]"]


def source_columns(transformed_names: list[str], inputs: list[str]) -> list[str]:
    """Map each transformed feature name back to the input column it came from.

    >>> source_columns(["numeric__age", "categorical__city_Paris",
    ...                 "numeric__missingindicator_age"], ["age", "city"])
    ['age', 'city', 'age']
    """
    out = []
    by_length = sorted(inputs, key=len, reverse=True)
    for name in transformed_names:
        rest = name.split("__", 1)[-1].removeprefix("missingindicator_")
        out.append(next((c for c in by_length if rest == c or rest.startswith(f"{c}_")), rest))
    return out


def booster_contributions(estimator: Any, transformed: np.ndarray, *, n_classes: int
                          ) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (contributions per transformed feature, expected values) from a booster's TreeSHAP.

    Shapes: (rows, features) and (rows,); for more than two classes, the contributions to
    each row's predicted class. None when the estimator has no native TreeSHAP.
    """
    import numpy as np

    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        contrib = estimator.predict(transformed, pred_contrib=True)
    elif module.startswith("xgboost"):
        import xgboost

        contrib = estimator.get_booster().predict(xgboost.DMatrix(transformed),
                                                  pred_contribs=True)
    else:
        return None
    contrib = np.asarray(contrib)
    if n_classes > 2:
        # One block of (features + bias) per class; explain each row's predicted class.
        blocks = contrib.reshape(len(contrib), n_classes, -1)
        chosen = blocks[np.arange(len(blocks)), blocks.sum(axis=2).argmax(axis=1)]
        return chosen[:, :-1], chosen[:, -1]
    return contrib[:, :-1], contrib[:, -1]


def booster_raw_output(estimator: Any, transformed: np.ndarray) -> np.ndarray:
    """Return a booster's raw output (log-odds or value), what its SHAP values add up to."""
    if type(estimator).__module__.startswith("lightgbm"):
        return estimator.predict(transformed, raw_score=True)
    import xgboost

    return estimator.get_booster().predict(xgboost.DMatrix(transformed), output_margin=True)


def sum_by_source(contributions: np.ndarray, transformed_names: list[str], inputs: list[str]
                  ) -> dict[str, np.ndarray]:
    """Return contributions summed back to the input column each transformed feature came from."""
    import numpy as np

    by_column = {c: np.zeros(len(contributions)) for c in inputs}
    for index, column in enumerate(source_columns(transformed_names, inputs)):
        if column in by_column:
            by_column[column] += contributions[:, index]
    return by_column


def explain(model: Any, frame: pd.DataFrame, y_encoded: np.ndarray, *, input_columns: list[str],
            predictions: Predictions, metric: str, labels: list[int] | None = None,
            seed: int = 0, seconds: float | None = None) -> dict[str, Any]:
    """Return global importance per input column and contributions for a few rows.

    ``predictions`` turns rows into (encoded predictions, probabilities), what permutation
    importance scores with ``metric`` when ``model`` offers no ``feature_contributions``.
    """
    import numpy as np

    sample = frame.sample(MAX_ROWS, random_state=seed) if len(frame) > MAX_ROWS else frame
    contribute = getattr(model, "feature_contributions", None)
    shap = contribute(sample) if callable(contribute) else None
    if shap is not None:
        by_column, expected, unit = shap
        importance = {c: float(np.abs(v).mean()) for c, v in by_column.items()}
        rows = [{"expected_value": float(expected[i]),
                 "contributions": {c: float(by_column[c][i]) for c in input_columns}}
                for i in range(min(ROWS_SHOWN, len(sample)))]
        return {"method": "tree_shap", "unit": unit, "importance": _sorted(importance),
                "rows": rows}
    index = frame.index.get_indexer(sample.index)
    measured: dict[str, Any] = {}
    importance = permutation_importance(sample, np.asarray(y_encoded)[index], input_columns,
                                        predictions=predictions, metric=metric, labels=labels,
                                        seed=seed, seconds=seconds, measured=measured)
    return {"method": "permutation", "unit": f"drop in {metric} when the column is shuffled",
            "importance": _sorted(importance), "rows": [], **measured}


def permutation_importance(frame: pd.DataFrame, y_encoded: np.ndarray, columns: list[str], *,
                           predictions: Predictions, metric: str,
                           labels: list[int] | None = None, seed: int = 0,
                           repeats: int = PERMUTATION_REPEATS, seconds: float | None = None,
                           measured: dict[str, Any] | None = None) -> dict[str, float]:
    """Return, per column, the mean drop in ``metric`` when that column's values are shuffled.

    A drop is measured in the metric's good direction, so a useful column scores above 0.
    ``seconds`` bounds the work: the model's time per row, measured on the unshuffled rows,
    sets how many rows (at least 100) and repeats (at least 1) fit; ``measured`` receives the
    rows and repeats used, and why they were cut.
    The shuffled copies are scored in batches of up to ``BATCH_ROWS`` rows: one call to the
    model per batch, not per column, which is what a wide frame or an ensemble costs.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    if len(frame) > PERMUTATION_ROWS:
        keep = rng.choice(len(frame), PERMUTATION_ROWS, replace=False)
        frame, y_encoded = frame.iloc[keep], y_encoded[keep]
    frame = frame.reset_index(drop=True)
    direction = get_metric(metric).direction
    n = len(frame)

    def judged(predicted: np.ndarray, proba: np.ndarray | None) -> float:
        try:
            return direction * score(metric, y_encoded, predicted, proba, labels=labels)
        except ValueError:
            return float("nan")

    started = time.perf_counter()
    baseline = judged(*predictions(frame))
    why = ""
    if seconds is not None and n:
        per_row = (time.perf_counter() - started) / n
        n, repeats, why = _fit_in(seconds, per_row, rows=n, columns=len(columns),
                                  repeats=repeats)
        if why:  # a random subset: the first rows of a time-ordered split are the earliest
            keep = np.sort(rng.choice(len(frame), n, replace=False))
            frame, y_encoded = frame.iloc[keep].reset_index(drop=True), y_encoded[keep]
            baseline = judged(*predictions(frame))
    if measured is not None:
        measured.update({"sample_rows": n, "repeats": repeats})
        if why:
            measured["sampled_for_time"] = why
    # the permutations are drawn in the order the one-at-a-time loop drew them
    blocks = [(column, rng.permutation(n)) for column in columns for _ in range(repeats)]
    drops: dict[str, list[float]] = {column: [] for column in columns}
    per_batch = max(1, BATCH_ROWS // max(n, 1))
    for start in range(0, len(blocks), per_batch):
        chunk = blocks[start:start + per_batch]
        batch = frame.iloc[np.tile(np.arange(n), len(chunk))].reset_index(drop=True)
        for column in dict.fromkeys(c for c, _ in chunk):
            values = batch[column].to_numpy(copy=True)
            original = frame[column].to_numpy()
            for position, (name, order) in enumerate(chunk):
                if name == column:
                    values[position * n:(position + 1) * n] = original[order]
            batch[column] = values
        predicted, proba = predictions(batch)
        for position, (column, _) in enumerate(chunk):
            rows = slice(position * n, (position + 1) * n)
            drops[column].append(baseline - judged(
                np.asarray(predicted)[rows], None if proba is None else np.asarray(proba)[rows]))
    out = {}
    for column, values in drops.items():
        mean = float(np.mean(values))
        out[column] = mean if mean == mean else 0.0
    return out


def _fit_in(seconds: float, per_row: float, *, rows: int, columns: int, repeats: int
            ) -> tuple[int, int, str]:
    """Return the rows and repeats whose shuffled predictions fit in ``seconds``, and why cut.

    >>> _fit_in(10.0, 0.001, rows=1000, columns=10, repeats=3)
    (333, 3, 'fewer rows (333 of 1000) to fit in 10 s')
    >>> _fit_in(100.0, 0.001, rows=1000, columns=10, repeats=3)
    (1000, 3, '')
    """
    def cost(n: int, r: int) -> float:
        return per_row * n * columns * r

    if cost(rows, repeats) <= seconds:
        return rows, repeats, ""
    fitted = min(rows, max(100, int(seconds / max(per_row * columns * repeats, 1e-12))))
    if fitted >= 100 * 2 or repeats == 1:
        return fitted, repeats, f"fewer rows ({fitted} of {rows}) to fit in {seconds:.0f} s"
    fitted = min(rows, max(100, int(seconds / max(per_row * columns, 1e-12))))
    return fitted, 1, f"one repeat on {fitted} of {rows} rows to fit in {seconds:.0f} s"


def _sorted(importance: dict[str, float]) -> dict[str, float]:
    return dict(sorted(importance.items(), key=lambda item: -abs(item[1])))
