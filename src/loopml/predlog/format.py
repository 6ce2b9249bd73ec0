"""The prediction log's format: segment schemas and names, and records turned into rows.

The server writes these rows (:mod:`loopml.serve.predlog`, where the whole design is told) and
the monitor reads them back (:mod:`loopml.predlog.read`).
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from loopml.errors import StoreError

# one logger for the whole log, writer and readers; its name predates this package and is
# kept so that users' logging settings still apply
log = logging.getLogger("loopml.serve.predlog")

_TS = pa.timestamp("us", tz="UTC")

#: One record per predicted row; a request of 3 rows gives 3 records sharing ``request_id``.
#:
#: - ``request_id``: the request's id (the ``X-Request-ID`` the client sent, or one made up).
#: - ``row``: the row's position in its request, from 0.
#: - ``ts``: when the request arrived (UTC).
#: - ``model``, ``version``, ``flavour``: the registry version that answered, and how it ran
#:   (``onnx`` or ``native``).
#: - ``latency_ms``: the whole request's latency, repeated on each of its rows.
#: - ``prediction``: the label or value, as JSON text (``"yes"``, ``1``, ``3.25``).
#: - ``probabilities``: the class probabilities in the model's class order; null for regressors.
#: - ``inputs``: the row's input columns as a JSON object, keys exactly as sent (any unicode);
#:   NaN and infinite numbers become ``null`` (JSON has no form for them).
PREDICTION_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=False),
    pa.field("ts", _TS, nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("version", pa.int64(), nullable=False),
    pa.field("flavour", pa.string(), nullable=False),
    pa.field("latency_ms", pa.float64(), nullable=False),
    pa.field("prediction", pa.string(), nullable=False),
    pa.field("probabilities", pa.list_(pa.float64()), nullable=True),
    pa.field("inputs", pa.string(), nullable=False),
])

#: One ground-truth label sent to ``POST /v1/models/{name}/feedback``.
#:
#: - ``request_id``: the request the label is for.
#: - ``row``: the row of that request, or null for every row of it.
#: - ``ts``: when the label arrived (UTC).
#: - ``label``: the true label or value, as JSON text.
FEEDBACK_SCHEMA = pa.schema([
    pa.field("request_id", pa.string(), nullable=False),
    pa.field("row", pa.int64(), nullable=True),
    pa.field("ts", _TS, nullable=False),
    pa.field("label", pa.string(), nullable=False),
])

KINDS: dict[str, pa.Schema] = {"predictions": PREDICTION_SCHEMA, "feedback": FEEDBACK_SCHEMA}

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SEGMENT = re.compile(r"^(\d{13})-(\d+)-([0-9a-f]+)-(\d+)\.parquet$")
_TMP_SUFFIX = ".parquet.tmp"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Record = Mapping[str, Any]


class TornSegment(StoreError):
    """A segment file that cannot be read as a log segment (truncated, garbage or foreign)."""


# ---------------------------------------------------------------------------------- values


def to_json(value: Any) -> str:
    """Return ``value`` as compact JSON text; NaN and infinities become ``null``.

    numpy scalars and arrays become numbers and lists, dates ISO strings, anything else its
    ``str``. Keys and strings keep their unicode.

    >>> to_json({"ü x": float("nan"), "n": [1, 2.5]})
    '{"ü x":null,"n":[1,2.5]}'
    """
    try:  # plain values (the usual case) need no walk through _plain
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # NaN, numpy, dates ...
        text = json.dumps(_plain(value), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: Parquet strings must be valid UTF-8
            text = json.dumps(_plain(value), allow_nan=False, separators=(",", ":"))
    return text


def _plain(value: Any) -> Any:
    """Return ``value`` made of JSON types only (see :func:`to_json`)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        return None
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return [_plain(v) for v in value]
    try:
        number = float(value)  # Decimal, Fraction
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def _micros(value: Any) -> int:
    """Return a time (aware or naive-UTC datetime, or epoch seconds) as epoch microseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("ts is not a finite number")
        return round(float(value) * 1_000_000)
    if getattr(getattr(value, "dtype", None), "kind", None) == "M":  # numpy datetime64
        return int(value.astype("datetime64[us]").astype("int64"))
    raise TypeError(f"ts must be a datetime or epoch seconds, not {type(value).__name__}")


def _probabilities(value: Any) -> list[float] | None:
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    return [float(p) for p in value]


def _inputs(value: Any) -> str:
    if isinstance(value, str):
        return value  # already JSON text: taken as given
    if not isinstance(value, Mapping):
        raise TypeError(f"inputs must be a mapping of column to value, not {type(value).__name__}")
    return to_json(value)


def _text(value: Any) -> str:
    """Return ``str(value)``, refusing what Parquet cannot store (a lone surrogate)."""
    text = str(value)
    if not text.isascii():
        text.encode("utf-8")  # UnicodeEncodeError is a ValueError: the record is rejected
    return text


def _prediction_row(record: Record, default_us: int) -> tuple[Any, ...]:
    ts = record.get("ts")
    return (_text(record["request_id"]), int(record["row"]),
            default_us if ts is None else _micros(ts),
            _text(record["model"]), int(record["version"]), _text(record["flavour"]),
            float(record["latency_ms"]), to_json(record["prediction"]),
            _probabilities(record.get("probabilities")), _text(_inputs(record["inputs"])))


def _feedback_row(record: Record, default_us: int) -> tuple[Any, ...]:
    ts, row = record.get("ts"), record.get("row")
    return (_text(record["request_id"]), None if row is None else int(row),
            default_us if ts is None else _micros(ts), to_json(record["label"]))


#: Per kind, the function turning one record (and the default ts, epoch microseconds) into a row
#: of that kind's schema: used by the writer and by tests that write segments directly.
ROW_MAKERS = {"predictions": _prediction_row, "feedback": _feedback_row}


