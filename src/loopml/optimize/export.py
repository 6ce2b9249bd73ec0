"""ONNX export of a trained loopml model: its preprocessing and estimator as one graph.

:func:`to_onnx` writes a graph that follows the loopml ONNX contract
(:mod:`loopml.optimize.contract`): raw columns in, ``probabilities`` or ``value`` out.

The preprocessing is written node by node from the fitted transformers, because skl2onnx
cannot convert loopml's FunctionTransformers and only partly converts infrequent
categories, target encoding and string imputation:

- numbers: ``Where(IsNaN(x), statistics, x)`` with the missing indicators, then the scaler;
- categories: one lookup table per column, made by calling the fitted transformer on every
  known category, on a missing value and on an unseen one, so one-hot (infrequent included),
  ordinal and target encodings all become ``LabelEncoder(text → row) + Gather(table)``;
- dates: year, month, day, day of week and hour from epoch seconds with Floor arithmetic,
  then imputed (and scaled) like numbers.

The estimator is converted on its own by :mod:`loopml.optimize.estimators`.
"""

from __future__ import annotations

import math
from typing import Any

from loopml.errors import ExportFailed
from loopml.optimize.graph import Graph

# A category no user value can be: it stands for "seen in no training row" when the
# lookup tables are made.
UNSEEN = "\x00loopml-unseen-category\x00"


def to_onnx(model: Any) -> bytes:
    """Return ``model`` (a :class:`~loopml.train.model.TrainedModel`) as serialized ONNX.

    Raises :class:`~loopml.errors.ExportFailed` naming the step that has no ONNX form
    (``features/datetime``, ``model (SomeEstimator)``) and why. An ensemble
    (:class:`loopml.train.ensemble.EnsembleModel` as the pipeline) becomes one graph of its
    members and their weighted mean (:mod:`loopml.optimize.ensemble_graph`); a member that
    cannot convert is named (``ensemble member 2 of 3 (random_forest): …``).

    Examples
    --------
    >>> blob = to_onnx(loopml.load_model("credit@champion"))        # doctest: +SKIP
    >>> OnnxModel.from_bytes(blob).predict(frame)                   # doctest: +SKIP
    """
    import onnx
    from onnx import TensorProto, helper

    from loopml.optimize.contract import PROBABILITIES, VALUE, make_signature, with_signature
    from loopml.optimize.ensemble_graph import ensemble_graph, ensemble_kinds, is_ensemble
    from loopml.optimize.estimators import estimator_graph

    g = Graph()
    names = {column: f"x{i}" for i, column in enumerate(model.input_columns)}
    n_classes = len(model.classes) if model.task != "regression" else 0
    if is_ensemble(model.pipeline):  # members side by side on the same inputs, then weighted
        kinds = ensemble_kinds(model.pipeline, model.input_columns)
        result = ensemble_graph(g, model.pipeline, names, task=model.task,
                                n_classes=n_classes)
    else:
        steps = getattr(model.pipeline, "named_steps", {})
        if "features" not in steps or "model" not in steps:
            raise ExportFailed("cannot export the model: expected a pipeline with the steps "
                               "'features' and 'model', or an ensemble of such pipelines")
        kinds = column_kinds(steps["features"], model.input_columns)
        features, width = features_graph(g, steps["features"], names)
        result = estimator_graph(g, steps["model"], features, width=width, task=model.task,
                                 n_classes=n_classes)
    output = VALUE if model.task == "regression" else PROBABILITIES
    g.op("Identity", [result], output=output)
    onnx_type = {"number": TensorProto.DOUBLE, "category": TensorProto.STRING,
                 "datetime": TensorProto.DOUBLE}
    inputs = [helper.make_tensor_value_info(names[c], onnx_type[kinds[c]], [None, 1])
              for c in model.input_columns]
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                             [None, max(1, n_classes)])]
    proto = g.model(inputs, outputs)
    signature = make_signature(task=model.task, target=model.target,
                               columns=[(c, kinds[c]) for c in model.input_columns],
                               classes=list(model.classes), threshold=model.threshold)
    proto = with_signature(proto, signature)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportFailed(f"cannot export the model: the ONNX graph is invalid ({exc})") \
            from exc
    return proto.SerializeToString()


def column_kinds(transformer: Any, columns: list[str]) -> dict[str, str]:
    """Return each input column's contract kind (number, category, datetime).

    A column no part of ``transformer`` reads is fed as text: any value passes.
    """
    kinds = dict.fromkeys(columns, "category")
    for _, part, used in _parts(transformer):
        kind = _part_kind(part)
        kinds.update({c: kind for c in used})
    return kinds


def features_graph(g: Graph, transformer: Any, names: dict[str, str]) -> tuple[str, int]:
    """Return the tensor (double ``[N, F]``) equal to ``transformer.transform`` and ``F``."""
    blocks, total = [], 0
    for name, part, columns in _parts(transformer):
        step = f"features/{name}"
        kind = _part_kind(part)
        x = [names[c] for c in columns]
        if kind == "category":
            block, width = _categories(g, part, columns, x, step=step)
        else:
            joined = g.op("Concat", x, "columns", axis=1) if len(x) > 1 else x[0]
            steps = _steps(part)
            if kind == "datetime":
                joined, steps = _date_parts(g, joined, len(x)), steps[1:]
                width = 5 * len(x)
            else:
                width = len(x)
            block, width = _numbers(g, joined, steps, width=width, step=step)
        expected = _width(transformer, name)
        if expected is not None and expected != width:
            raise ExportFailed(f"cannot export {step}: the graph makes {width} features, "
                               f"the pipeline {expected}")
        blocks.append(block)
        total += width
    if not blocks:
        raise ExportFailed("cannot export features: the pipeline uses no input column")
    out = g.op("Concat", blocks, "features", axis=1) if len(blocks) > 1 else blocks[0]
    return out, total


def _parts(transformer: Any) -> list[tuple[str, Any, list[str]]]:
    fitted = getattr(transformer, "transformers_", None)
    if fitted is None:
        raise ExportFailed(f"cannot export features: expected a fitted ColumnTransformer, "
                           f"got {type(transformer).__name__}")
    parts = []
    for name, part, columns in fitted:
        if isinstance(part, str) and part == "drop":
            continue
        columns = list(columns) if not isinstance(columns, str) else [columns]
        if not columns:
            continue
        if isinstance(part, str):  # "passthrough": raw values go through untouched
            raise ExportFailed(f"cannot export features/{name}: {part!r} columns have no "
                               "ONNX form here")
        if not all(isinstance(c, str) for c in columns):
            raise ExportFailed(f"cannot export features/{name}: columns must be chosen by "
                               "name")
        parts.append((name, part, columns))
    return parts


def _steps(part: Any) -> list[Any]:
    return [s for _, s in part.steps if s not in (None, "passthrough")] \
        if hasattr(part, "steps") else [part]


def _part_kind(part: Any) -> str:
    steps = _steps(part)
    if steps and getattr(getattr(steps[0], "func", None), "__name__", "") == \
            "_extract_date_parts":
        return "datetime"
    if any(hasattr(s, "categories_") for s in steps):
        return "category"
    return "number"


def _width(transformer: Any, name: str) -> int | None:
    indices = getattr(transformer, "output_indices_", {}).get(name)
    return None if indices is None else indices.stop - indices.start


# -- numbers -------------------------------------------------------------------------------

def _numbers(g: Graph, x: str, steps: list[Any], *, width: int, step: str) -> tuple[str, int]:
    """Return imputation, missing indicators and scaling of ``x`` (double ``[N, width]``)."""
    import numpy as np

    for transform in steps:
        kind = type(transform).__name__
        if kind == "SimpleImputer":
            missing = transform.missing_values
            if not (isinstance(missing, float) and math.isnan(missing)):
                raise ExportFailed(f"cannot export {step}: SimpleImputer(missing_values="
                                   f"{missing!r}) has no ONNX form; only NaN is supported")
            fill = np.asarray(transform.statistics_, dtype=np.float64)
            nan = g.op("IsNaN", [x], "is_missing")
            imputed = g.op("Where", [nan, g.const(fill.reshape(1, -1), "statistics"), x],
                           "imputed")
            kept = np.arange(width) if getattr(transform, "keep_empty_features", False) \
                else np.flatnonzero(~np.isnan(fill))
            if len(kept) < width:  # columns with no value in training are dropped
                imputed = g.op("Gather", [imputed, g.const(kept.astype(np.int64))], axis=1)
            blocks, new_width = [imputed], len(kept)
            indicator = getattr(transform, "indicator_", None)
            if indicator is not None and len(indicator.features_):
                flags = g.op("Gather", [nan, g.const(np.asarray(indicator.features_,
                                                                dtype=np.int64))], axis=1)
                blocks.append(g.op("Cast", [flags], "indicator", to=_DOUBLE()))
                new_width += len(indicator.features_)
            x = g.op("Concat", blocks, "numbers", axis=1) if len(blocks) > 1 else blocks[0]
            width = new_width
        elif kind == "StandardScaler":
            if getattr(transform, "mean_", None) is not None and transform.with_mean:
                x = g.op("Sub", [x, g.const(np.asarray(transform.mean_, dtype=np.float64)
                                           .reshape(1, -1), "mean")])
            if getattr(transform, "scale_", None) is not None:
                x = g.op("Div", [x, g.const(np.asarray(transform.scale_, dtype=np.float64)
                                           .reshape(1, -1), "scale")])
        else:
            raise ExportFailed(f"cannot export {step}: {kind} has no ONNX form here "
                               "(numbers support SimpleImputer and StandardScaler)")
    return x, width


def _DOUBLE() -> int:  # noqa: N802 - reads like the ONNX constant it returns
    from onnx import TensorProto

    return TensorProto.DOUBLE


# -- categories ----------------------------------------------------------------------------

def _categories(g: Graph, part: Any, columns: list[str], x: list[str], *, step: str
                ) -> tuple[str, int]:
    """Return the encoded categories: per column a text → row lookup and a table gather."""
    import numpy as np
    import pandas as pd

    encoder = next(s for s in _steps(part) if hasattr(s, "categories_"))
    widths = _encoder_widths(encoder, len(columns), step=step)
    known = [[c for c in encoder.categories_[j] if not _is_missing(c)]
             for j in range(len(columns))]
    rows = max(len(k) for k in known) + 2
    probe = {}
    for column, values in zip(columns, known, strict=True):
        filler = values[0] if values else None
        probe[column] = [*values, None, UNSEEN] + [filler] * (rows - len(values) - 2)
    try:
        table = part.transform(pd.DataFrame(probe, dtype=object))
    except Exception as exc:  # the transformer's own error says why
        raise ExportFailed(f"cannot export {step}: its transformer failed on the known "
                           f"categories ({type(exc).__name__}: {exc})") from exc
    table = np.asarray(table.toarray() if hasattr(table, "toarray") else table,
                       dtype=np.float64)
    if table.shape[1] != sum(widths):
        raise ExportFailed(f"cannot export {step}: expected {sum(widths)} encoded columns, "
                           f"the transformer made {table.shape[1]}")
    blocks, start = [], 0
    for name, values, width in zip(x, known, widths, strict=True):
        missing_row, unseen_row = len(values), len(values) + 1
        lookup: dict[str, int] = {}
        for row, value in enumerate(values):
            for key in category_keys(value):
                lookup.setdefault(key, row)
        lookup[""] = missing_row  # the contract feeds a missing value as ""
        index = g.op("LabelEncoder", [name], "row", domain="ai.onnx.ml",
                     keys_strings=list(lookup), values_int64s=list(lookup.values()),
                     default_int64=unseen_row)
        flat = g.op("Reshape", [index, g.const(np.array([-1], dtype=np.int64))])
        encoded = table[:unseen_row + 1, start:start + width]
        blocks.append(g.op("Gather", [g.const(encoded, "encoding"), flat], "encoded",
                           axis=0))
        start += width
    out = g.op("Concat", blocks, "categories", axis=1) if len(blocks) > 1 else blocks[0]
    return out, sum(widths)


def category_keys(value: Any) -> list[str]:
    """Return the texts that feed ``value``: a whole number answers to "3" and "3.0".

    >>> category_keys(3.0), category_keys("Lyon"), category_keys(2.5)
    (['3.0', '3'], ['Lyon'], ['2.5'])
    """
    import numbers

    keys = [str(value)]
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and \
            math.isfinite(float(value)) and float(value).is_integer():
        keys += [str(int(value)), str(float(value))]
    return list(dict.fromkeys(keys))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _encoder_widths(encoder: Any, n_columns: int, *, step: str) -> list[int]:
    kind = type(encoder).__name__
    if kind == "OrdinalEncoder":
        return [1] * n_columns
    if kind == "TargetEncoder":
        return [len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1] * \
            n_columns
    if kind == "OneHotEncoder":
        infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * n_columns
        dropped = encoder.drop_idx_ if encoder.drop_idx_ is not None else [None] * n_columns
        return [len(cats) - (len(rare) - 1 if rare is not None else 0)
                - (1 if drop is not None else 0)
                for cats, rare, drop in zip(encoder.categories_, infrequent, dropped,
                                            strict=True)]
    raise ExportFailed(f"cannot export {step}: {kind} has no ONNX form here (categories "
                       "support OneHotEncoder, OrdinalEncoder and TargetEncoder)")


# -- dates ---------------------------------------------------------------------------------

def _date_parts(g: Graph, seconds: str, n_columns: int) -> str:
    """Return year, month, day, day_of_week, hour per column (double ``[N, 5 * columns]``).

    Days to a civil date by Howard Hinnant's ``civil_from_days``, in double with Floor, so
    dates before 1970 work too; day_of_week counts Monday as 0 like pandas. NaN stays NaN.
    """
    import numpy as np

    from loopml.train.features import DATE_PARTS

    assert DATE_PARTS == ("year", "month", "day", "day_of_week", "hour")

    def c(value: float) -> str:
        return g.const(np.array(value, dtype=np.float64))

    def floor_div(a: str, b: float) -> str:
        return g.op("Floor", [g.op("Div", [a, c(b)])])

    def mul(a: str, b: float) -> str:
        return g.op("Mul", [a, c(b)])

    def sub(a: str, b: str) -> str:
        return g.op("Sub", [a, b])

    def add(a: str, b: float) -> str:
        return g.op("Add", [a, c(b)])

    days = floor_div(seconds, 86400.0)
    hour = floor_div(sub(seconds, mul(days, 86400.0)), 3600.0)
    shifted = add(days, 3.0)  # 1970-01-01 was a Thursday: 3 when Monday is 0
    weekday = sub(shifted, mul(floor_div(shifted, 7.0), 7.0))
    z = add(days, 719468.0)
    era = floor_div(z, 146097.0)
    doe = sub(z, mul(era, 146097.0))
    yoe = floor_div(g.op("Sub", [g.op("Add", [sub(doe, floor_div(doe, 1460.0)),
                                               floor_div(doe, 36524.0)]),
                                 floor_div(doe, 146096.0)]), 365.0)
    doy = sub(doe, g.op("Sub", [g.op("Add", [mul(yoe, 365.0), floor_div(yoe, 4.0)]),
                                floor_div(yoe, 100.0)]))
    mp = floor_div(add(mul(doy, 5.0), 2.0), 153.0)
    day = add(sub(doy, floor_div(add(mul(mp, 153.0), 2.0), 5.0)), 1.0)
    month = g.op("Where", [g.op("Less", [mp, c(10.0)]), add(mp, 3.0), add(mp, -9.0)])
    year = g.op("Add", [yoe, mul(era, 400.0)])
    year = g.op("Where", [g.op("Less", [month, c(3.0)]), add(year, 1.0), year], "year")
    parts = [g.op("Unsqueeze", [p, g.const(np.array([2], dtype=np.int64))])
             for p in (year, month, day, weekday, hour)]
    stacked = g.op("Concat", parts, axis=2)  # [N, columns, 5]: each column's parts together
    return g.op("Reshape", [stacked, g.const(np.array([-1, 5 * n_columns], dtype=np.int64))],
                "date_parts")
