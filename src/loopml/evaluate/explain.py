"""Explanations: exact TreeSHAP for LightGBM and XGBoost, permutation importance otherwise.

SHAP values come from the boosters' own TreeSHAP (``pred_contrib``), in the model's raw
output (log-odds for classes, the value for regression), so for every row they add up to
the raw prediction minus the expected value. Contributions of the columns the
preprocessing made from one input column (one-hot levels, date parts, missing flags) are
summed back to that input column, which keeps the additivity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.train.model import TrainedModel

ROWS_SHOWN = 5
MAX_ROWS = 2000
PERMUTATION_ROWS = 1000  # permutation importance predicts columns × repeats times


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


def tree_shap(model: TrainedModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (per-feature contributions, expected values) in transformed-feature space.

    Shapes: (rows, features) and (rows,); for multiclass models, the contributions to each
    row's predicted class. None when the estimator has no native TreeSHAP.
    """
    import numpy as np

    estimator = model.pipeline.named_steps["model"]
    transformed = model.pipeline.named_steps["features"].transform(frame[model.input_columns])
    transformed = np.asarray(transformed, dtype=float)
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
    if model.task == "multiclass":
        # One block of (features + bias) per class; explain each row's predicted class.
        classes = len(model.classes)
        blocks = contrib.reshape(len(contrib), classes, -1)
        chosen = blocks[np.arange(len(blocks)), blocks.sum(axis=2).argmax(axis=1)]
        return chosen[:, :-1], chosen[:, -1]
    return contrib[:, :-1], contrib[:, -1]


def raw_prediction(model: TrainedModel, frame: pd.DataFrame) -> np.ndarray:
    """Return the booster's raw output (log-odds or value), what SHAP values add up to."""
    import numpy as np

    estimator = model.pipeline.named_steps["model"]
    transformed = np.asarray(model.pipeline.named_steps["features"].transform(
        frame[model.input_columns]), dtype=float)
    if type(estimator).__module__.startswith("lightgbm"):
        return estimator.predict(transformed, raw_score=True)
    import xgboost

    return estimator.get_booster().predict(xgboost.DMatrix(transformed), output_margin=True)


def explain(model: TrainedModel, frame: pd.DataFrame, y_encoded: np.ndarray, *, metric: str,
            seed: int = 0) -> dict[str, Any]:
    """Return global importance per input column and contributions for a few rows."""
    import numpy as np

    sample = frame.sample(min(len(frame), MAX_ROWS), random_state=seed) if len(frame) > \
        MAX_ROWS else frame
    shap = tree_shap(model, sample)
    if shap is not None:
        contributions, expected = shap
        names = list(model.pipeline.named_steps["features"].get_feature_names_out())
        sources = source_columns(names, model.input_columns)
        by_column = {c: np.zeros(len(sample)) for c in model.input_columns}
        for index, column in enumerate(sources):
            if column in by_column:
                by_column[column] += contributions[:, index]
        importance = {c: float(np.abs(v).mean()) for c, v in by_column.items()}
        rows = [{"expected_value": float(expected[i]),
                 "contributions": {c: float(by_column[c][i]) for c in model.input_columns}}
                for i in range(min(ROWS_SHOWN, len(sample)))]
        unit = "raw model output (log-odds of the predicted class)" if model.task == \
            "multiclass" else "raw model output (log-odds for classes)"
        return {"method": "tree_shap", "unit": unit,
                "importance": _sorted(importance), "rows": rows}
    return _permutation(model, sample, frame, y_encoded, metric=metric, seed=seed)


def _permutation(model: TrainedModel, sample: pd.DataFrame, frame: pd.DataFrame,
                 y_encoded: np.ndarray, *, metric: str, seed: int) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance

    from loopml.train.scoring import needs_proba, score
    from loopml.train.task import DIRECTION

    if len(sample) > PERMUTATION_ROWS:
        sample = sample.sample(PERMUTATION_ROWS, random_state=seed)
    index = frame.index.get_indexer(sample.index)
    target = y_encoded[index]
    labels = list(range(len(model.classes))) if model.classes else None

    def scorer(estimator: Any, X: pd.DataFrame, y: np.ndarray) -> float:
        proba = estimator.predict_proba(X) if model.task != "regression" and \
            needs_proba(metric) else None
        if model.task == "regression":
            predicted = estimator.predict(X)
        else:
            predicted = (proba if proba is not None else estimator.predict_proba(X)).argmax(1)
        return DIRECTION[metric] * score(metric, y, predicted, proba, labels=labels)

    result = permutation_importance(model.pipeline, sample[model.input_columns], target,
                                    scoring=scorer, n_repeats=3, random_state=seed, n_jobs=1)
    importance = {c: float(v) for c, v in zip(model.input_columns, result.importances_mean,
                                              strict=True)}
    return {"method": "permutation", "unit": f"drop in {metric} when the column is shuffled",
            "importance": _sorted(importance), "rows": []}


def _sorted(importance: dict[str, float]) -> dict[str, float]:
    return dict(sorted(importance.items(), key=lambda item: -abs(item[1])))
