"""How a chunk of rows becomes predictions: the scorer behind `loopml predict`.

:class:`_Scorer` turns an Arrow table of input rows into the same rows with ``prediction``
and, for classifiers, one ``probability_<label>`` column per class. ONNX models of the loopml
contract are fed straight from Arrow columns (:func:`onnx_feeds`); other models get a pandas
frame. The scorer is picklable: the Ray backend (``batch_ray.py``) runs it on its workers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

PREDICTION = "prediction"
PROBABILITY = "probability_"


def output_names(classes: Iterable[Any]) -> list[str]:
    """Return the ``probability_<label>`` column names of ``classes``: unique and plain.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``; a label left
    empty or taken by an earlier label gets its index instead.

    >>> output_names(["yes", "no"]), output_names([0, 1]), output_names(["a b", "a/b", ""])
    (['probability_yes', 'probability_no'], ['probability_0', 'probability_1'], \
['probability_a_b', 'probability_a_b_1', 'probability_2'])
    """
    names: list[str] = []
    for index, label in enumerate(classes):
        plain = re.sub(r"[^\w.-]+", "_", str(label)).strip("_")[:60]
        name = f"{PROBABILITY}{plain}" if plain else f"{PROBABILITY}{index}"
        names.append(name if name not in names else f"{name}_{index}")
    return names


class _Scorer:
    """Turns a chunk of input rows (an Arrow table) into output rows; also runs on Ray."""

    def __init__(self, model: Any, *, keep: list[str], source: str) -> None:
        self.model = model
        self.keep = keep
        self.source = source
        self.task = model.task
        self.inputs = list(model.input_columns)
        self.kinds = model_kinds(model)
        signature = getattr(model, "signature", None)
        # the fast path: an ONNX model of the loopml contract (OnnxModel), fed from Arrow
        self.onnx = hasattr(model, "session") and isinstance(signature, dict) and \
            "columns" in signature
        self.classes = model.classes_ if self.task != "regression" else None
        self.probabilities = output_names(self.classes) if self.classes is not None else []
        self.label_type = self._label_type()

    def output_fields(self) -> list[pa.Field]:
        """Return the fields this scorer appends: prediction, then probabilities."""
        import pyarrow as pa

        fields = [pa.field(PREDICTION, self.label_type)]
        return fields + [pa.field(name, pa.float64()) for name in self.probabilities]

    def __call__(self, table: pa.Table, *, first_row: int | None = None) -> pa.Table:
        return self.finish(table, self.prepare(table, first_row=first_row))

    def prepare(self, table: pa.Table, *, first_row: int | None = None) -> Any:
        """Return the model's input for ``table``: ONNX feeds, or a pandas frame."""
        import pyarrow as pa

        columns = self._model_inputs(table, first_row)
        if self.onnx:
            return onnx_feeds(columns, self.model.signature)
        return pa.table(columns).to_pandas()

    def finish(self, table: pa.Table, prepared: Any) -> pa.Table:
        """Return ``table``'s kept columns with the model's answers on ``prepared`` added."""
        import numpy as np
        import pyarrow as pa

        if self.task == "regression":
            values = self._run_onnx(prepared)[:, 0] if self.onnx else \
                self.model.predict(prepared)
            out = {PREDICTION: pa.array(np.asarray(values, dtype=np.float64))}
        else:
            proba = self._proba(prepared)
            labels = self._labels(proba, prepared)
            try:
                prediction = pa.array(labels, type=self.label_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # labels of mixed kinds, as text
                prediction = pa.array(np.asarray(labels).astype(str))
            out = {PREDICTION: prediction}
            out.update({name: pa.array(proba[:, i], type=pa.float64())
                        for i, name in enumerate(self.probabilities)})
        result = table.select(self.keep)
        for name, array in out.items():
            result = result.append_column(name, array)
        return result

    def _label_type(self) -> pa.DataType:
        """Return the Arrow type of the labels: numbers, booleans or text, as the classes."""
        import numpy as np
        import pyarrow as pa

        if self.classes is None:
            return pa.float64()
        try:
            kind = pa.array(np.asarray(self.classes, dtype=object).tolist()).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed kinds: written as text
            return pa.string()
        return pa.string() if pa.types.is_null(kind) else kind

    def _model_inputs(self, table: pa.Table, first_row: int | None) -> dict[str, Any]:
        """Return the model's columns, numbers checked: a text value is a clear error."""
        columns = {}
        for name in self.inputs:
            column = table.column(name)
            if self.kinds.get(name) == "number" and not _numeric(column.type):
                column = self._as_numbers(name, column, first_row)
            columns[name] = column
        return columns

    def _as_numbers(self, name: str, column: Any, first_row: int | None) -> Any:
        import pyarrow as pa

        try:
            return column.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        import pandas as pd

        values = column.to_pandas()
        bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
        index = int(bad.to_numpy().argmax()) if bad.any() else 0
        row = f", data row {first_row + index + 1:,}" if first_row is not None else ""
        # the value itself is not shown: it may be personal data
        raise InvalidInput(f"{self.source}: column {name!r}{row}: expected a number, got "
                           f"{column.type} values the model cannot use ({int(bad.sum())} in "
                           "this chunk); fix the file or convert the column to numbers")

    def _proba(self, prepared: Any) -> np.ndarray:
        import numpy as np

        if not self.onnx:
            return np.asarray(self.model.predict_proba(prepared), dtype=np.float64)
        # as OnnxModel.predict_proba: float64 rows renormalised when they already sum to ~1
        proba = np.asarray(self._run_onnx(prepared), dtype=np.float64)
        sums = proba.sum(axis=1, keepdims=True)
        return np.where(np.abs(sums - 1.0) <= 1e-4, proba / np.where(sums == 0, 1.0, sums),
                        proba)

    def _labels(self, proba: np.ndarray, prepared: Any) -> np.ndarray:
        threshold = getattr(self.model, "threshold", None)
        if threshold is None:  # not a loopml model: its own predict decides
            return self.model.predict(prepared)
        # the rule of TrainedModel.predict and OnnxModel.predict, without a second pass
        if self.task == "binary":
            return self.classes[(proba[:, 1] >= threshold).astype(int)]
        return self.classes[proba.argmax(axis=1)]

    def _run_onnx(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        output = next(iter(self.model.signature["outputs"].values()))
        return self.model.session.run([output], feeds)[0]


def onnx_feeds(columns: dict[str, Any], signature: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the ONNX feeds of Arrow ``columns`` (name -> array) under the loopml contract.

    Numbers, text and whole numbers as categories, and timestamps are converted by Arrow
    kernels; any other type goes through :func:`loopml.optimize.contract.input_feeds`.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    feeds: dict[str, np.ndarray] = {}
    slow: list[dict[str, Any]] = []
    for spec in signature["columns"]:
        column, kind = columns[spec["name"]], spec["kind"]
        kind_of = column.type
        if kind == "number" and _numeric(kind_of):
            array = _floats(column.cast(pa.float64()))
        elif kind == "category" and (pa.types.is_string(kind_of) or
                                     pa.types.is_large_string(kind_of) or
                                     pa.types.is_integer(kind_of)):
            # "" is the contract's missing value; an integer reads as str(value) does
            text = column.cast(pa.string()) if not pa.types.is_string(kind_of) else column
            array = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False),
                               dtype=object)
        elif kind == "datetime" and pa.types.is_timestamp(kind_of):
            per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind_of.unit]
            raw = column.cast(pa.timestamp(kind_of.unit)).cast(pa.int64())
            array = _floats(raw.cast(pa.float64())) / per_second
        else:
            slow.append(spec)
            continue
        feeds[spec["input"]] = array.reshape(-1, 1)
    if slow:
        from loopml.optimize.contract import input_feeds

        frame = pa.table({s["name"]: columns[s["name"]] for s in slow}).to_pandas()
        feeds.update(input_feeds(frame, {**signature, "columns": slow}))
    return feeds


def model_kinds(model: Any) -> dict[str, str]:
    """Return the kind (number, category, datetime) of each input column ``model`` knows.

    From an ONNX signature, an ``input_kinds`` mapping, or the preprocessing of a loopml
    pipeline (its ``features`` step; for an ensemble, the union of its members' steps);
    empty for other models (their columns go unchecked).
    """
    signature = getattr(model, "signature", None)
    if isinstance(signature, dict) and "columns" in signature:
        return {c["name"]: c["kind"] for c in signature["columns"]}
    kinds = getattr(model, "input_kinds", None)
    if isinstance(kinds, dict):
        return dict(kinds)
    pipeline = getattr(model, "pipeline", None)
    members = getattr(pipeline, "members", None)  # loopml.train.ensemble.EnsembleModel
    out: dict[str, str] = {}
    for member in members if isinstance(members, list) else [pipeline]:
        steps = getattr(member, "named_steps", {})
        parts = getattr(steps.get("features"), "transformers", None) or []
        # the part names of loopml.train.features.build_preprocessor
        names = {"numeric": "number", "categorical": "category",
                 "high_cardinality": "category", "datetime": "datetime"}
        for part, _, columns in parts:
            for column in (columns if part in names and isinstance(columns, list) else []):
                # a column one member reads as a number must be checked as one
                if out.get(column) != "number":
                    out[column] = names[part]
    return out


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or
            pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind))


def _floats(column: Any) -> np.ndarray:
    """Return a float64 numpy array of an Arrow float column, NaN where null."""
    import numpy as np

    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
