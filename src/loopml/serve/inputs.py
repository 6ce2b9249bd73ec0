"""Request bodies into model inputs: parsed, checked against the signature, as column arrays.

A request holds rows as records (``[{"age": 41, "city": "Lyon"}, …]``) or as columns
(``{"age": [41, 37], "city": ["Lyon", "Nice"]}``). Every value is checked against the
version's input signature before the model sees it: a missing or extra column, a value of
the wrong type, a category the contract does not allow, a missing value where the column is
not nullable, too many rows — each is a :class:`RequestError` naming the column (and row)
and what was expected, which the server answers with 4xx. The result is one numpy array per
column in the ONNX contract's feeding form (numbers float64 with NaN, categories text with ""
for missing, datetimes float64 seconds since 1970 UTC), so rows from many requests are
joined by concatenation and fed without pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

Columns = dict[str, "np.ndarray"]
MAX_EPOCH_SECONDS = 9.2e9  # pandas' nanosecond timestamps end in 2262 (and begin in 1677)


class RequestError(InvalidInput):
    """A request the model cannot take; ``status`` is the HTTP code the server answers."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InputColumn:
    name: str
    kind: str  # number | category | datetime
    nullable: bool = True
    allowed: frozenset[str] | None = None


def signature_columns(signature: dict[str, Any]) -> list[InputColumn]:
    """Return the input columns of a registry signature (``record.signature``)."""
    out = []
    for entry in signature.get("inputs", []):
        allowed = entry.get("allowed")
        out.append(InputColumn(entry["name"], entry.get("kind", "number"),
                               bool(entry.get("nullable", True)),
                               frozenset(map(str, allowed)) if allowed else None))
    return out


def parse_rows(body: Any, columns: list[InputColumn], *, max_rows: int
               ) -> tuple[Columns, int, dict[str, list[Any]]]:
    """Return ``(arrays by column, row count, raw values by column)`` of a request body.

    The arrays are the ONNX feeding form; the raw values (checked, as sent) build the frame
    a native model takes, so a category sent as a number stays a number there.

    >>> cols = [InputColumn("age", "number"), InputColumn("city", "category")]
    >>> arrays, n, _ = parse_rows([{"age": 41, "city": "Lyon"}], cols, max_rows=10)
    >>> n, arrays["age"].tolist(), arrays["city"].tolist()
    (1, [41.0], ['Lyon'])
    """
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]  # the shape several serving tools use
    if isinstance(body, dict) and ("records" in body or "columns" in body):
        body = body.get("records", body.get("columns"))
    if isinstance(body, list):
        raw = _from_records(body, columns, max_rows=max_rows)
    elif isinstance(body, dict):
        raw = _from_columns(body, columns, max_rows=max_rows)
    else:
        raise RequestError("the body must be a JSON list of records ([{column: value}, …]) or "
                           "an object of columns ({column: [values]})")
    rows = len(next(iter(raw.values()))) if raw else 0
    if rows == 0:
        raise RequestError("the request holds no rows")
    return {c.name: convert(c, raw[c.name]) for c in columns}, rows, raw


def _check_names(names: set[str], columns: list[InputColumn]) -> None:
    expected = {c.name for c in columns}
    missing = [c.name for c in columns if c.name not in names]
    extra = sorted(n for n in names if n not in expected)
    if missing:
        raise RequestError(f"missing column(s) {', '.join(map(repr, missing[:10]))}; the model "
                           f"takes {len(columns)}: {', '.join(repr(c.name) for c in columns[:20])}")
    if extra:
        raise RequestError(f"unknown column(s) {', '.join(map(repr, extra[:10]))}: the model "
                           f"does not take them (its columns: "
                           f"{', '.join(repr(c.name) for c in columns[:20])})")


def _from_records(records: list[Any], columns: list[InputColumn], *, max_rows: int
                  ) -> dict[str, list[Any]]:
    if len(records) > max_rows:
        raise RequestError(f"{len(records)} rows in one request; at most {max_rows}", status=413)
    out: dict[str, list[Any]] = {c.name: [] for c in columns}
    for number, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(f"row {number}: expected an object {{column: value}}, got "
                               f"{type(record).__name__}")
        if len(record) != len(columns) or any(name not in record for name in out):
            _check_names(set(record), columns)
        for name, values in out.items():
            values.append(record[name])
    return out


def _from_columns(data: dict[str, Any], columns: list[InputColumn], *, max_rows: int
                  ) -> dict[str, list[Any]]:
    _check_names(set(data), columns)
    lengths = set()
    for column in columns:
        values = data[column.name]
        if not isinstance(values, list):
            raise RequestError(f"column {column.name!r}: expected a list of values, got "
                               f"{type(values).__name__}")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise RequestError(f"columns have different lengths ({', '.join(map(str, sorted(lengths)))}"
                           "); each needs one value per row")
    if lengths and max(lengths) > max_rows:
        raise RequestError(f"{max(lengths)} rows in one request; at most {max_rows}", status=413)
    return {c.name: data[c.name] for c in columns}


def convert(column: InputColumn, values: list[Any]) -> np.ndarray:
    """Return ``values`` as the column's feeding array, refusing what does not fit."""
    import numpy as np

    if column.kind == "number":
        out = np.empty(len(values), dtype=np.float64)
        for row, value in enumerate(values):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out[row] = math.nan
            elif isinstance(value, bool | int | float):
                try:
                    number = float(value)
                except OverflowError:  # a whole number beyond any float
                    number = math.inf
                if math.isinf(number):
                    raise RequestError(f"column {column.name!r} row {row}: expected a finite "
                                       "number (infinity and numbers beyond ±1.8e308 are not)")
                out[row] = number
            else:
                raise RequestError(f"column {column.name!r} row {row}: expected a number, got "
                                   f"{_what(value)}")
            if not column.nullable and math.isnan(out[row]):
                raise RequestError(f"column {column.name!r} row {row}: a value is required "
                                   "(the column is not nullable)")
        return out
    if column.kind == "category":
        out = np.empty(len(values), dtype=object)
        for row, value in enumerate(values):
            if value is None:
                if not column.nullable:
                    raise RequestError(f"column {column.name!r} row {row}: a value is required "
                                       "(the column is not nullable)")
                out[row] = ""
                continue
            if isinstance(value, bool | int | float | str):
                text = check_text(_category_text(value), f"column {column.name!r} row {row}")
            else:
                raise RequestError(f"column {column.name!r} row {row}: expected text, got "
                                   f"{_what(value)}")
            if column.allowed is not None and text not in column.allowed:
                shown = ", ".join(sorted(column.allowed)[:10])
                raise RequestError(f"column {column.name!r} row {row}: unknown category; "
                                   f"allowed: {shown}{' …' if len(column.allowed) > 10 else ''}")
            out[row] = text
        return out
    return _datetimes(column, values)


def check_text(text: str, where: str) -> str:
    """Return ``text`` if it can be stored and answered as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{where}: the text is not valid Unicode (a lone surrogate "
                           "escape such as \\ud800)") from None
    return text


def _category_text(value: Any) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _datetimes(column: InputColumn, values: list[Any]) -> np.ndarray:
    import numpy as np
    import pandas as pd

    out = np.empty(len(values), dtype=np.float64)
    where = f"column {column.name!r} row {{row}}"
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[row] = math.nan
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                seconds = float(value)  # seconds since 1970 UTC
            except OverflowError:
                seconds = math.inf
            if not -MAX_EPOCH_SECONDS <= seconds <= MAX_EPOCH_SECONDS:
                raise RequestError(f"{where.format(row=row)}: seconds since 1970 must be "
                                   "within the years 1677–2262")
            out[row] = seconds
        elif isinstance(value, str):
            try:
                stamp = pd.Timestamp(value)
            except (ValueError, TypeError, OverflowError):
                raise RequestError(f"{where.format(row=row)}: expected an ISO 8601 date-time "
                                   "(e.g. 2024-05-01T12:00:00Z) within the years 1677–2262"
                                   ) from None
            if stamp is pd.NaT:
                out[row] = math.nan
            else:
                stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else \
                    stamp.tz_convert("UTC")
                out[row] = stamp.value / 1e9
        else:
            raise RequestError(f"{where.format(row=row)}: expected an ISO 8601 date-time, "
                               f"got {_what(value)}")
        if not column.nullable and math.isnan(out[row]):
            raise RequestError(f"{where.format(row=row)}: a value is required (the column is "
                               "not nullable)")
    return out


def _what(value: Any) -> str:
    """Return what a JSON value is, never the value itself (it may be personal data)."""
    return {str: "text", list: "a list", dict: "an object", bool: "true/false"}.get(
        type(value), type(value).__name__)


def as_frame(raw: dict[str, list[Any]], arrays: Columns, columns: list[InputColumn]) -> Any:
    """Return the rows as the pandas DataFrame a native model takes (its raw-input form)."""
    import pandas as pd

    data: dict[str, Any] = {}
    for column in columns:
        if column.kind == "number":
            data[column.name] = arrays[column.name]
        elif column.kind == "datetime":
            data[column.name] = pd.to_datetime(arrays[column.name], unit="s", utc=True
                                               ).tz_localize(None)
        else:
            data[column.name] = pd.Series(raw[column.name], dtype=object)
    return pd.DataFrame(data)
