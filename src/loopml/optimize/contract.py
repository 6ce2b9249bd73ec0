"""The loopml ONNX contract: how rows go into an ONNX model and how its answers come out.

Every ONNX model loopml stores, serves or bundles follows it, whether loopml trained it or
it was imported, so one runtime, one server path and one bundle ``predict.py`` serve them all.

- Inputs: one per input column, in order, named ``x0``, ``x1``, … (column names can be
  anything; they live in the metadata, never in ONNX names), each of shape ``[N, 1]``:
  ``number`` is double (NaN missing), ``category`` is string ("" missing; a value is fed as
  ``str(value)`` and a whole-number category answers to both "3" and "3.0"), ``datetime``
  is double seconds since 1970-01-01 UTC (naive times read as UTC; NaN missing).
- Outputs: ``probabilities`` float ``[N, n_classes]`` in the order of ``classes`` for
  classification, ``value`` float ``[N, 1]`` for regression. Labels are computed outside
  the graph: binary by the stored threshold on the second column, multiclass by argmax.
- Metadata: ``metadata_props["loopml.signature"]`` is the JSON signature (see
  :func:`make_signature`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SIGNATURE_KEY = "loopml.signature"
KINDS = ("number", "category", "datetime")
PROBABILITIES = "probabilities"
VALUE = "value"


def make_signature(*, task: str, columns: list[tuple[str, str]], classes: list[Any],
                   threshold: float = 0.5, target: str | None = None,
                   source: str = "loopml") -> dict[str, Any]:
    """Return the signature dict for ``columns`` given as ``(name, kind)`` pairs.

    >>> make_signature(task="regression", columns=[("age", "number")], classes=[])["columns"]
    [{'name': 'age', 'input': 'x0', 'kind': 'number'}]
    """
    for name, kind in columns:
        if kind not in KINDS:
            raise InvalidInput(f"column {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    output = {VALUE: VALUE} if task == "regression" else {PROBABILITIES: PROBABILITIES}
    return {"format": 1, "source": source, "task": task, "target": target,
            "classes": [_plain(c) for c in classes], "threshold": float(threshold),
            "columns": [{"name": name, "input": f"x{i}", "kind": kind}
                        for i, (name, kind) in enumerate(columns)],
            "outputs": output}


def with_signature(model: Any, signature: dict[str, Any]) -> Any:
    """Return ``model`` (an ``onnx.ModelProto``) with ``signature`` in its metadata."""
    for prop in list(model.metadata_props):
        if prop.key == SIGNATURE_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = SIGNATURE_KEY, json.dumps(signature, ensure_ascii=False)
    return model


def signature_of(model: Any) -> dict[str, Any]:
    """Return the signature stored in ``model`` (an ``onnx.ModelProto`` or its metadata map)."""
    props = model if isinstance(model, dict) else \
        {p.key: p.value for p in model.metadata_props}
    text = props.get(SIGNATURE_KEY)
    if text is None:
        raise InvalidInput("the ONNX model has no loopml signature; import it with "
                           "`loopml models import FILE --signature sig.yaml`")
    return json.loads(text)


def input_feeds(frame: pd.DataFrame, signature: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the ONNX feeds for ``frame``: one ``[N, 1]`` array per signature column."""

    missing = [c["name"] for c in signature["columns"] if c["name"] not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise InvalidInput(f"input is missing column(s) {shown}; the model needs "
                           f"{len(signature['columns'])} columns")
    feeds = {}
    for column in signature["columns"]:
        values = frame[column["name"]]
        if column["kind"] == "number":
            array = _numbers(values, column["name"])
        elif column["kind"] == "category":
            array = _texts(values)
        else:
            array = _epoch_seconds(values)
        feeds[column["input"]] = array.reshape(-1, 1)
    return feeds


def labels_from(output: np.ndarray, signature: dict[str, Any]) -> np.ndarray:
    """Return labels in the target's own values from the ``probabilities`` output."""
    import numpy as np

    classes = np.asarray(signature["classes"], dtype=object)
    if signature["task"] == "binary":
        return classes[(output[:, 1] >= signature["threshold"]).astype(int)]
    return classes[output.argmax(axis=1)]


def _plain(value: Any) -> Any:
    """Return ``value`` as a JSON value: numpy scalars become Python ones."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _texts(values: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.StringDtype):  # already text: no per-value Python call
        return values.to_numpy(dtype=object, na_value="")
    return np.array(["" if _missing(v) else str(v) for v in values], dtype=object)


def _numbers(values: pd.Series, name: str) -> np.ndarray:
    import numpy as np
    import pandas as pd

    kind = values.dtype.kind
    if kind in "fiu":  # numpy numbers: one copy, no parsing (the single-row path)
        return values.to_numpy(dtype=np.float64)
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64").to_numpy()
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise InvalidInput(f"column {name!r}: expected numbers, got text in "
                           f"{int(bad.sum())} row(s)")
    return np.asarray(numbers, dtype=np.float64)


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":
        # naive numpy datetimes (tz-aware ones are not numpy dtypes): read as UTC, any unit
        stamps = values.to_numpy()
        unit, count = np.datetime_data(stamps.dtype)
        per_second = np.timedelta64(1, "s") / np.timedelta64(count, unit)
        seconds = stamps.view(np.int64) / per_second
        seconds[np.isnat(stamps)] = np.nan
        return seconds
    stamps = pd.to_datetime(values, errors="coerce", utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return np.asarray(seconds, dtype=np.float64)
