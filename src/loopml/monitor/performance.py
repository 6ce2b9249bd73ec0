"""Model performance over the prediction log: realised once labels arrive, estimated before.

- :func:`realised_metrics`: the task's metrics (from the one metric table,
  :mod:`loopml.evaluate.metrics`) on the rows whose labels arrived.
- :func:`estimate_metrics` and :class:`Calibrator` (in :mod:`loopml.monitor.calibration`):
  the confidence-based estimate (CBPE) for classifiers before labels arrive.
- :func:`model_reference`: what a version's test split says once, stored by the runner: the
  fitted calibrator, the output distribution to detect prediction drift, the test metrics.
- Labels (:mod:`loopml.monitor.labels`) are re-exported: :func:`latest_labels`,
  :func:`join_labels`, :func:`unknown_labels`, :class:`LabelJoin`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.monitor.calibration import Calibrator, estimate_metrics, expected_roc_auc
from loopml.monitor.labels import (
    LabelJoin,
    decode_labels,
    join_labels,
    latest_labels,
    unknown_labels,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from loopml.registry.registry import Registry
    from loopml.store.models import ModelVersionRecord

__all__ = [
    "realised_interval",
    "Calibrator",
    "LabelJoin",
    "estimate_metrics",
    "expected_roc_auc",
    "join_labels",
    "latest_labels",
    "model_reference",
    "prediction_reference",
    "realised_metrics",
    "unknown_labels",
]

def realised_metrics(task: str, labels: Sequence[Any], y_true: Any, prediction: Any,
                     probabilities: Any, *, threshold: float | None = 0.5
                     ) -> dict[str, float | None]:
    """Return every metric of ``task`` on labelled rows; None where a metric is undefined.

    ``labels`` are the model's classes (the signature's ``outputs.labels``; ignored for
    regression). ``y_true`` holds the true labels as values of the classes (or numbers);
    rows where it is null are left out, with their prediction and probabilities.
    ``prediction``: the logged predictions (JSON text, as in the log, or values); for a
    classifier that logged ``probabilities`` (an (n, k) matrix or the log's list column) the
    predicted class comes from them, as the model card computes it: the positive class when
    its probability is at least ``threshold`` (binary), the most probable class otherwise.

    >>> realised_metrics("regression", [], [1.0, 2.0, None], ["1.5", "2.5", "9"], None)["mae"]
    0.5
    """

    from loopml.evaluate.metrics import all_metrics

    task, y, pred, proba, indices = _encoded(task, labels, y_true, prediction, probabilities,
                                             threshold=threshold)
    return all_metrics(task, y, pred, proba, labels=indices)


def realised_interval(task: str, labels: Sequence[Any], y_true: Any, prediction: Any,
                      probabilities: Any, *, metric: str, threshold: float | None = 0.5,
                      confidence: float = 0.95, resamples: int = 300, seed: int = 0,
                      max_rows: int = 20_000) -> tuple[float, float] | None:
    """Return the bootstrap percentile interval of ``metric`` on the labelled rows, or None.

    Arguments as :func:`realised_metrics`. Above ``max_rows`` labelled rows a seeded sample
    of that many is resampled (a wider, so cautious, interval). None when the metric is
    undefined on too many resamples (one class only) or there are no rows.

    >>> low, high = realised_interval("regression", [], [1.0, 2.0, 3.0, 4.0] * 25,
    ...                               ["1.5", "2", "3", "5"] * 25, None, metric="mae")
    >>> low < 0.375 < high
    True
    """
    import numpy as np

    from loopml.evaluate.metrics import get_metric

    spec = get_metric(metric, task=task)
    if spec.needs_proba and probabilities is None:
        return None  # a model that logged no probabilities: no interval of a ranking metric
    task, y, pred, proba, indices = _encoded(task, labels, y_true, prediction, probabilities,
                                             threshold=threshold)
    rng = np.random.default_rng(seed)
    if len(y) > max_rows:
        keep = np.sort(rng.choice(len(y), max_rows, replace=False))
        y, pred = y[keep], pred[keep]
        proba = None if proba is None else proba[keep]
    if len(y) < 2:
        return None
    weights = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=resamples)
    if spec.resampled is not None:
        values = np.asarray(spec.resampled(weights, y, pred, proba, indices), dtype=float)
    else:  # one call per resample
        values = np.array([_score_once(spec, w, y, pred, proba, indices) for w in weights])
    values = values[np.isfinite(values)]
    if len(values) < resamples // 2:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _score_once(spec: Any, weights: Any, y: Any, pred: Any, proba: Any, indices: Any) -> float:
    import numpy as np

    rows = np.repeat(np.arange(len(y)), weights)
    try:
        return float(spec.compute(y[rows], pred[rows], None if proba is None else proba[rows],
                                  indices))
    except ValueError:
        return float("nan")


def _encoded(task: str, labels: Sequence[Any], y_true: Any, prediction: Any,
             probabilities: Any, *, threshold: float | None
             ) -> tuple[str, Any, Any, Any, list[int] | None]:
    """Return (task, y, pred, proba, label indices) as the metric table takes them."""
    import numpy as np

    from loopml.evaluate.metrics import TASKS
    from loopml.monitor.calibration import _matrix

    if task not in TASKS:
        raise InvalidInput(f"task {task!r} is not one of {', '.join(TASKS)}")
    truth = _arrow(y_true)
    keep = np.asarray(truth.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    n = len(truth)
    predicted = _arrow(prediction) if prediction is not None else None
    if predicted is not None and len(predicted) != n:
        raise InvalidInput(f"realised_metrics: {len(predicted)} predictions for {n} labels")
    proba = None if probabilities is None else _matrix(probabilities)
    if proba is not None and len(proba) != n:
        raise InvalidInput(f"realised_metrics: {len(proba)} rows of probabilities for "
                           f"{n} labels")
    if task == "regression":
        if predicted is None:
            raise InvalidInput("realised_metrics: a regressor's predictions are needed")
        y = _numbers(truth)
        pred = _numbers(predicted)
        keep &= np.isfinite(y) & np.isfinite(pred)
        return task, y[keep], pred[keep], None, None
    classes = list(labels)
    if len(classes) < 2:
        raise InvalidInput(f"a {task} model needs its classes (the signature's outputs.labels),"
                           f" got {classes}")
    _, y_index, invalid = decode_labels(_as_json(truth), task=task, classes=classes)
    y = np.asarray(y_index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    keep &= ~invalid
    if proba is not None:
        if proba.shape[1] != len(classes):
            raise InvalidInput(f"probabilities have {proba.shape[1]} columns for "
                               f"{len(classes)} classes")
        cut = 0.5 if threshold is None else float(threshold)
        pred = (proba[:, 1] >= cut).astype(np.int64) if task == "binary" \
            else proba.argmax(axis=1)
    elif predicted is not None:
        _, p_index, p_invalid = decode_labels(_as_json(predicted), task=task, classes=classes)
        pred = np.asarray(p_index.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        keep &= ~p_invalid
    else:
        raise InvalidInput("realised_metrics: predictions or probabilities are needed")
    return (task, y[keep], pred[keep], None if proba is None else proba[keep],
            list(range(len(classes))))




def _arrow(values: Any) -> pa.Array:
    """Return any 1-d values (Arrow, numpy, list) as one Arrow array."""
    import numpy as np
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if isinstance(values, pa.Array):
        return values
    array = np.asarray(values) if not isinstance(values, list) else None
    if array is not None and array.dtype.kind == "f":
        return pa.array(array, mask=np.isnan(array))
    return pa.array(values if array is None or array.dtype.kind != "O" else list(values),
                    from_pandas=True)


def _as_json(values: pa.Array) -> pa.Array:
    """Return labels as JSON texts: text is taken as JSON when it reads as JSON, else quoted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # Each distinct value once: a window holds many rows but few labels.
    encoded = pc.dictionary_encode(values)
    out = []
    for value in encoded.dictionary.to_pylist():
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                value = json.dumps(value)
            out.append(value)
        else:
            out.append(None if value is None else json.dumps(value))
    return pa.array(out, pa.string()).take(encoded.indices)


def _numbers(values: pa.Array) -> np.ndarray:
    import numpy as np
    import pyarrow as pa

    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        decoded, _, _ = decode_labels(values, task="regression")
        values = decoded
    return np.asarray(values.cast(pa.float64()).fill_null(np.nan)
                      .to_numpy(zero_copy_only=False), dtype=float)


# ---------------------------------------------------------------------------------- reference


def model_reference(registry: Registry, record: ModelVersionRecord) -> dict[str, Any]:
    """Return what a version's test split says, once: calibrator, output distribution, metrics.

    The version is loaded (verified) and predicts the test split of its training dataset
    version (``record.lineage``). Returns a JSON-ready dict::

        {"calibrator": Calibrator JSON | None (regression),
         "prediction": FeatureRef fields of the output distribution,
         "test_metrics": the card's metrics, "test_rows": n, "threshold": t | None}

    Raises :class:`InvalidInput` for a version without training data in its lineage (an
    imported model) and :class:`NotFound` when that dataset is gone.
    """
    import numpy as np

    from loopml.evaluate.report import encode_labels
    from loopml.registry.promote import training_parts

    outputs = record.signature.get("outputs", {})
    task = record.task
    target = outputs.get("target") or outputs.get("value", {}).get("target")
    inputs = [c["name"] for c in record.signature.get("inputs", [])]
    test = training_parts(registry, record)["test"]
    if len(test) == 0:
        raise InvalidInput(f"{record.ref}'s test split of {record.lineage.get('dataset')} is "
                           "empty: there is nothing to calibrate on")
    missing = [c for c in [*inputs, target] if c and c not in test.columns]
    if missing or not target:
        raise InvalidInput(f"{record.ref}'s test split lacks column(s) "
                           f"{', '.join(map(repr, missing or ['target']))}")
    model = registry.load(record)
    threshold = outputs.get("threshold")
    labelled = test[test[target].notna()]
    out: dict[str, Any] = {"calibrator": None, "test_metrics": dict(record.metrics or {}),
                           "test_rows": int(len(test)),
                           "threshold": None if threshold is None else float(threshold)}
    if task == "regression":
        values = np.asarray(model.predict(test[inputs]), dtype=float)
        out["prediction"] = prediction_reference(task, values=values)
        return out
    classes = list(outputs.get("labels") or [])
    proba = np.asarray(model.predict_proba(test[inputs]), dtype=float)
    if task == "binary":
        out["prediction"] = prediction_reference(task, values=proba[:, 1])
    else:
        predicted = proba.argmax(axis=1)
        out["prediction"] = prediction_reference(task, labels=[classes[i] for i in predicted],
                                                 classes=classes)
    if len(labelled):
        mask = test[target].notna().to_numpy()
        y = encode_labels(labelled[target].tolist(), classes)
        out["calibrator"] = Calibrator.fit(task, y, proba[mask]).to_json()
    return out


def prediction_reference(task: str, *, values: Any = None, labels: Sequence[Any] | None = None,
                         classes: Sequence[Any] | None = None, bins: int | None = None
                         ) -> dict[str, Any]:
    """Return the reference output distribution as ``sketch.FeatureRef`` JSON (a dict).

    Binary (positive-class probabilities) and regression (values): a numeric reference with
    the quantile bins of :meth:`Reference.from_frame` (``bins`` equal-mass bins, the profile's
    number by default), so a window's outputs fall in bins the way its features do.
    Multiclass (predicted labels): a categorical reference counting every class, as text.

    >>> ref = prediction_reference("multiclass", labels=["a", "b", "a"], classes=["a", "b"])
    >>> ref["categories"], ref["category_counts"]
    (['a', 'b'], [2.0, 1.0, 0.0])
    """
    from dataclasses import replace

    import numpy as np
    import pyarrow as pa

    from loopml.monitor.logscan import category_text
    from loopml.monitor.reference import FeatureRef, Reference

    if task == "multiclass":
        texts = [category_text(c) for c in (classes or [])]
        index = {t: i for i, t in enumerate(texts)}
        counts = [0.0] * (len(texts) + 1)
        seen = [category_text(v) for v in (labels or [])]
        for text in seen:
            counts[index.get(text, len(texts))] += 1.0  # not a class: "other"
        return FeatureRef(name="prediction", kind="categorical", rows=len(seen),
                          missing_share=0.0, categories=texts, category_counts=counts,
                          allowed=texts).to_json()
    numbers = np.asarray(values, dtype=float)
    column = pa.array(numbers, mask=~np.isfinite(numbers))
    if bins is None:  # a small test split: ~20 values a bin, so PSI and the plots mean something
        bins = int(min(50, max(5, np.isfinite(numbers).sum() // 20)))
    ref = Reference.from_frame(pa.table({"prediction": column}), pii={}, bins=bins,
                               source="predictions").features["prediction"]
    if task == "binary":
        ref = replace(ref, low=0.0, high=1.0)
    return ref.to_json()
