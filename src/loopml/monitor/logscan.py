"""The prediction log read for monitoring: logged inputs as typed columns, outputs, windows.

Each logged row keeps its inputs as one JSON object text (see
:mod:`loopml.predlog.format`). :func:`parse_inputs` turns a column of those texts into
one typed column per monitored feature, read the way the server read the request (see
the server's input checks (serve/inputs.py)):

- ``numeric``: float64; a JSON number, or true/false as 1/0. Text, lists and objects are
  *invalid* (counted, then treated as missing).
- ``categorical``: text; a number becomes the text the server gave the model (``7`` and
  ``7.0`` → ``"7"``, ``2.5`` → ``"2.5"``), true/false the text the dataset profile (and so the
  reference and the contract's allowed values) holds for booleans: ``"true"``/``"false"``.
  Lists and objects are invalid.
- ``datetime``: float64 seconds since 1970 UTC; ISO 8601 text (a naive time is UTC) or a
  number of seconds. Unreadable text, true/false, and times outside 1677–2262 are invalid.

A key that is absent, or ``null``, is missing (not invalid).

Speed: the texts are parsed by Arrow's JSON reader with an explicit schema, in chunks. A
chunk where a column holds a JSON type the schema does not expect is parsed again without
that column, and only that column is read value by value (DuckDB's JSON functions), so one
odd value costs one chunk's re-parse, not the log's.

>>> features, invalid = parse_inputs(pa.array(['{"age": 41, "city": "Lyon"}',
...                                            '{"age": "n/a", "city": 7}']),
...                                  {"age": "numeric", "city": "categorical"})
>>> features.column("age").to_pylist(), features.column("city").to_pylist()
([41.0, None], ['Lyon', '7'])
>>> invalid["age"].to_pylist()
[False, True]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

KINDS = ("numeric", "categorical", "datetime")
CHUNK_ROWS = 65_536  # one odd value costs a re-parse of this many rows at most
CHUNK_BYTES = 64 << 20  # ...and of this much text (wide rows: fewer rows per chunk)
MAX_EPOCH_SECONDS = 9.2e9  # as the server: pandas' nanosecond times end in 2262
_MAX_RETRIES = 8  # re-parses of one chunk before every remaining column goes value by value

# The JSON type the Arrow reader is first told to expect, by kind.
_FIRST_TYPE = {"numeric": pa.float64(), "categorical": pa.string(), "datetime": pa.string()}
# A column whose values all come as another JSON type is read as that type: a category sent
# as numbers (zip codes), a time sent as epoch seconds. Numbers never switch: a text in a
# numeric column is a contract violation, read value by value.
_SWITCH = {("categorical", "number"): pa.float64(), ("categorical", "boolean"): pa.bool_(),
           ("datetime", "number"): pa.float64()}
_CHANGED = re.compile(r"Column\(/(.*)\) changed from (\w+) to (\w+) in row \d+\s*$", re.S)
_NUMBER_TYPES = ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT", "INTEGER")


@dataclass(frozen=True)
class ParsedSegment:
    """One segment's rows of one model, with their inputs as typed columns.

    ``table``: request_id, row, ts, version, prediction (JSON text), probabilities.
    ``features``: one typed column per monitored feature, same row order.
    ``invalid``: per feature, a boolean mask of values not readable as the column's type.
    """

    table: pa.Table
    features: pa.Table
    invalid: dict[str, pa.Array]


def parse_segment(table: pa.Table, *, model: str, columns: Mapping[str, str]) -> ParsedSegment:
    """Return the rows of ``model`` in a prediction-log segment, inputs parsed (ParsedSegment)."""
    import pyarrow.compute as pc

    rows = table.filter(pc.equal(table.column("model"), model))
    features, invalid = parse_inputs(rows.column("inputs"), columns)
    keep = [c for c in ("request_id", "row", "ts", "version", "prediction", "probabilities")
            if c in rows.column_names]
    return ParsedSegment(rows.select(keep), features, invalid)


def parse_inputs(inputs: pa.Array | pa.ChunkedArray, columns: Mapping[str, str]
                 ) -> tuple[pa.Table, dict[str, pa.Array]]:
    """Return ``(typed feature table, invalid masks)`` of logged input JSON texts.

    ``columns`` maps each feature to ``"numeric"``, ``"categorical"`` or ``"datetime"``; the
    table has them in that order (float64, string, float64 epoch seconds). Keys not in
    ``columns`` are ignored. See the module docstring for what is valid.
    """
    return InputParser(columns).parse(inputs)


class InputParser:
    """Parses logged input texts into typed columns, remembering what type each column came as.

    One parser can read many batches of the same model: a column found to come as another
    JSON type (categories as numbers) is expected as that type in the next chunks.
    """

    def __init__(self, columns: Mapping[str, str]) -> None:
        for name, kind in columns.items():
            if kind not in KINDS:
                raise InvalidInput(f"column {name!r}: kind {kind!r} is not one of "
                                   f"{', '.join(KINDS)}")
        self.columns = dict(columns)
        self._types = {name: _FIRST_TYPE[kind] for name, kind in self.columns.items()}
        self._mixed: set[str] = set()  # columns seen with two JSON types: read value by value

    def parse(self, inputs: pa.Array | pa.ChunkedArray) -> tuple[pa.Table, dict[str, pa.Array]]:
        """Return ``(typed feature table, invalid masks)``; see :func:`parse_inputs`."""
        chunks = inputs.chunks if isinstance(inputs, pa.ChunkedArray) else [inputs]
        parts: list[tuple[dict[str, pa.Array], dict[str, pa.Array]]] = []
        for chunk in chunks:
            width = chunk.nbytes / max(len(chunk), 1)
            step = max(1, min(CHUNK_ROWS, int(CHUNK_BYTES / max(width, 1.0))))
            for start in range(0, len(chunk), step):
                parts.append(self._chunk(chunk.slice(start, step)))
        names = list(self.columns)
        if not parts:
            empty = {n: pa.array([], _OUT_TYPE[self.columns[n]]) for n in names}
            return pa.table(empty), {n: pa.array([], pa.bool_()) for n in names}
        if len(parts) == 1:
            values, invalid = parts[0]
            return pa.table({n: values[n] for n in names}), invalid
        table = pa.table({n: pa.chunked_array([p[0][n] for p in parts], _OUT_TYPE[self.columns[n]])
                          for n in names})
        invalid = {n: pa.concat_arrays([p[1][n] for p in parts]) for n in names}
        return table, invalid

    # -- one chunk

    def _chunk(self, texts: pa.Array) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
        texts = _clean(texts)
        fast = {n: t for n, t in self._types.items() if n not in self._mixed}
        slow = [n for n in self._types if n in self._mixed]
        read = None
        switched: set[str] = set()
        for _ in range(_MAX_RETRIES):
            if not fast:
                break
            try:
                read = _read_json(texts, fast)
                break
            except pa.ArrowInvalid as exc:
                name, seen = _culprit(str(exc), fast)
                if name is None:  # a row that is not an object, a huge number ...: no column
                    slow.extend(fast)
                    fast = {}
                    break
                switch = _SWITCH.get((self.columns[name], seen))
                if switch is not None and name not in switched and fast[name] != switch:
                    fast[name] = self._types[name] = switch
                    switched.add(name)
                else:
                    if name in switched:  # two JSON types in one column: no type fits it
                        self._mixed.add(name)
                    slow.append(name)
                    del fast[name]
        else:
            slow.extend(fast)
            fast = {}
        values: dict[str, pa.Array] = {}
        invalid: dict[str, pa.Array] = {}
        if fast and read is not None:
            for name, kind in self.columns.items():
                if name in fast:
                    values[name], invalid[name] = _convert_typed(read.column(name), kind)
        if slow:
            for name, (types, texts_of) in _extract(texts, slow).items():
                values[name], invalid[name] = _convert_tokens(types, texts_of,
                                                              self.columns[name])
        return values, invalid


_OUT_TYPE = {"numeric": pa.float64(), "categorical": pa.string(), "datetime": pa.float64()}


def _clean(texts: pa.Array) -> pa.Array:
    """Return the texts as one JSON object per line: nulls and "" as {}, no raw newlines."""
    import numpy as np
    import pyarrow.compute as pc

    texts = texts.cast(pa.string())
    if texts.null_count:
        texts = texts.fill_null("{}")
    if not len(texts):
        return texts
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=len(texts) + 1,
                            offset=texts.offset * 4)
    if (offsets[1:] == offsets[:-1]).any():
        texts = pc.if_else(pc.equal(pc.binary_length(texts), 0), "{}", texts)
        offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=len(texts) + 1,
                                offset=texts.offset * 4)
    # A raw line break can only be whitespace between tokens (JSON strings escape it), so a
    # space in its place keeps every value and keeps one row per line. Looked for in the
    # bytes at once: a search per text costs as much as the parse.
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if np.count_nonzero(data < 0x20) and ((data == 0x0A).any() or (data == 0x0D).any()):
        texts = pc.replace_substring(pc.replace_substring(texts, "\n", " "), "\r", " ")
    return texts


def _read_json(texts: pa.Array, types: dict[str, pa.DataType]) -> pa.Table:
    """Return the texts read by Arrow's JSON reader with the given column types."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.json as pj

    lines = pc.binary_join_element_wise(texts, "", "\n")  # each text and a line break
    offsets = lines.buffers()[1]
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    data = lines.buffers()[2]
    body = pa.py_buffer(memoryview(data)[int(bounds[0]):int(bounds[-1])]) if len(lines) else \
        pa.py_buffer(b"")
    schema = pa.schema([(name, typ) for name, typ in types.items()])
    table = pj.read_json(pa.BufferReader(body),
                         read_options=pj.ReadOptions(block_size=1 << 22),
                         parse_options=pj.ParseOptions(explicit_schema=schema,
                                                       unexpected_field_behavior="ignore"))
    if table.num_rows != len(texts):  # never expected after _clean; guards the row order
        raise pa.ArrowInvalid(f"JSON reader gave {table.num_rows} rows for {len(texts)}")
    return table.combine_chunks()


def _culprit(message: str, fast: dict[str, pa.DataType]) -> tuple[str | None, str | None]:
    """Return (column, JSON type seen) named by an Arrow JSON error, or (None, None)."""
    match = _CHANGED.search(message)
    if match is None or match.group(1) not in fast:
        return None, None
    return match.group(1), match.group(3)


def _convert_typed(column: pa.Array | pa.ChunkedArray, kind: str) -> tuple[pa.Array, pa.Array]:
    """Return (values, invalid) of a column the Arrow reader typed."""
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n = len(column)
    if kind == "numeric":
        return _finite(column.cast(pa.float64()))
    if kind == "categorical":
        if pa.types.is_string(column.type):
            return column, _false(n)
        if pa.types.is_boolean(column.type):
            return pc.if_else(column, "true", "false"), _false(n)
        return _number_texts(column.cast(pa.float64())), _false(n)
    # datetime
    if pa.types.is_string(column.type):
        return _iso_seconds(column)
    return _epoch_seconds(column.cast(pa.float64()))


def _false(n: int) -> pa.Array:
    import numpy as np

    return pa.array(np.zeros(n, dtype=bool))


def _finite(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return (values with non-finite as null, mask of the non-finite)."""
    import pyarrow.compute as pc

    bad = pc.fill_null(pc.invert(pc.is_finite(values)), False)
    if pc.any(bad).as_py():
        values = pc.if_else(bad, pa.scalar(None, pa.float64()), values)
    return values, bad


def _epoch_seconds(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return (seconds, invalid) of numbers given as seconds since 1970 (range-checked)."""
    import pyarrow.compute as pc

    bad = pc.fill_null(pc.greater(pc.abs(values), MAX_EPOCH_SECONDS), False)
    bad = pc.or_(bad, pc.fill_null(pc.invert(pc.is_finite(values)), False))
    if pc.any(bad).as_py():
        values = pc.if_else(bad, pa.scalar(None, pa.float64()), values)
    return values, bad


def _iso_seconds(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Return (seconds since 1970 UTC, invalid) of ISO 8601 texts; naive times are UTC."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    series = pd.Series(texts.to_numpy(zero_copy_only=False), dtype=object)
    stamps = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
    nanos = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    missing = stamps.isna().to_numpy()
    seconds = np.where(missing, np.nan, nanos / 1e9)
    given = np.asarray(texts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    retry = missing & given
    if retry.any():  # what the server also took: pandas' looser reading, per distinct text
        cache: dict[str, float] = {}
        for i in np.flatnonzero(retry):
            text = texts[int(i)].as_py()
            if text not in cache:
                cache[text] = _one_time(text)
            seconds[i] = cache[text]
    invalid = given & np.isnan(seconds)
    # An empty string is no time at all: the server reads it as missing (NaT).
    if invalid.any():
        blank = np.asarray(pc.fill_null(pc.equal(pc.utf8_trim_whitespace(texts), ""), False)
                           .to_numpy(zero_copy_only=False), dtype=bool)
        invalid &= ~blank
    return pa.array(seconds, mask=np.isnan(seconds)), pa.array(invalid)


def _one_time(text: str) -> float:
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return math.nan
    if stamp is pd.NaT:
        return math.nan
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.value / 1e9


def _number_texts(values: pa.Array) -> pa.Array:
    """Return numbers as the category text the server makes of them (1.0 → "1", 2.5 → "2.5")."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    texts = [None if v is None else category_text(v)
             for v in encoded.dictionary.to_pylist()]
    return pa.array(texts, pa.string()).take(encoded.indices)


def category_text(value: Any) -> str:
    """Return the text a category value is monitored as (the reference's text of it).

    Numbers as the server gives them to the model; booleans as the dataset profile writes
    them (DuckDB's text of a boolean), so they match the reference's categories.

    >>> category_text(1.0), category_text(2.5), category_text(True), category_text("x")
    ('1', '2.5', 'true', 'x')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer():
            return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------- slow path


def _extract(texts: pa.Array, names: Sequence[str]) -> dict[str, tuple[pa.Array, pa.Array]]:
    """Return, per column, (JSON type, value text) of every row, read value by value."""
    import duckdb

    pointers = ["/" + name.replace("~", "~0").replace("/", "~1") for name in names]
    select = ", ".join(f"json_type(j, ${i + 1}) AS t{i}, json_extract_string(j, ${i + 1}) AS v{i}"
                       for i in range(len(names)))
    con = duckdb.connect(":memory:")
    try:
        con.register("chunk", pa.table({"j": texts}))
        # Not JSON at all: every column missing for that row (json_* would raise).
        result = con.sql(f"SELECT {select} FROM (SELECT CASE WHEN json_valid(j) THEN j END AS j "
                         "FROM chunk)", params=pointers).to_arrow_table()
    finally:
        con.close()
    out = {}
    for i, name in enumerate(names):
        out[name] = (result.column(f"t{i}").combine_chunks().cast(pa.string()),
                     result.column(f"v{i}").combine_chunks().cast(pa.string()))
    return out


def _convert_tokens(types: pa.Array, values: pa.Array, kind: str) -> tuple[pa.Array, pa.Array]:
    """Return (values, invalid) of one column read value by value (JSON type + text)."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(types)
    kinds = np.asarray(pc.fill_null(types, "NULL").to_numpy(zero_copy_only=False), dtype=object)
    is_number = np.isin(kinds, _NUMBER_TYPES)
    is_bool = kinds == "BOOLEAN"
    is_text = kinds == "VARCHAR"
    is_missing = kinds == "NULL"
    texts = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    if kind == "numeric":
        out = np.full(n, np.nan)
        if is_number.any():
            out[is_number] = [_float(t) for t in texts[is_number]]
        out[is_bool] = [1.0 if t == "true" else 0.0 for t in texts[is_bool]]
        bad = ~(is_number | is_bool | is_missing) | ((is_number | is_bool) & ~np.isfinite(out))
        out[bad] = np.nan
        return pa.array(out, mask=np.isnan(out)), pa.array(bad)
    if kind == "categorical":
        cats = np.full(n, None, dtype=object)
        cats[is_text] = texts[is_text]
        cats[is_bool] = texts[is_bool]  # "true"/"false", as category_text writes them
        cache: dict[str, str] = {}
        for i in np.flatnonzero(is_number):
            text = texts[i]
            if text not in cache:
                cache[text] = _number_category(text)
            cats[i] = cache[text]
        bad = ~(is_text | is_bool | is_number | is_missing)
        return pa.array(cats, pa.string()), pa.array(bad)
    # datetime
    seconds = np.full(n, np.nan)
    bad = ~(is_text | is_number | is_missing)
    if is_number.any():
        numbers = np.array([_float(t) for t in texts[is_number]])
        ok = np.isfinite(numbers) & (np.abs(numbers) <= MAX_EPOCH_SECONDS)
        seconds[is_number] = np.where(ok, numbers, np.nan)
        bad[np.flatnonzero(is_number)[~ok]] = True
    if is_text.any():
        parsed, wrong = _iso_seconds(pa.array(texts[is_text], pa.string()))
        seconds[is_text] = parsed.to_numpy(zero_copy_only=False)
        bad[np.flatnonzero(is_text)[np.asarray(wrong.to_numpy(zero_copy_only=False))]] = True
    return pa.array(seconds, mask=np.isnan(seconds)), pa.array(bad)


def _float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _number_category(text: str) -> str:
    """Return the category text of a JSON number token (ints exactly, as the server)."""
    try:
        return str(int(text))
    except ValueError:
        return category_text(_float(text))


# ---------------------------------------------------------------------------------- outputs


def prediction_values(table: pa.Table, *, task: str, labels: Sequence[Any] = (),
                      kind: str | None = None) -> pa.Array:
    """Return the model's output per row, in the form the prediction sketch takes.

    - binary: the positive class's probability (``probabilities[:, 1]``, float64); a model
      that logged no probabilities gives its predicted label as text instead.
    - multiclass: the predicted label as text (``category_text`` of the class).
    - regression: the predicted value (float64).

    ``kind`` (``"numeric"`` or ``"categorical"``) forces the form, e.g. the kind of the
    reference's prediction; rows without probabilities are then null.

    >>> t = pa.table({"prediction": ['1', '0'], "probabilities": [[0.2, 0.8], [0.9, 0.1]]})
    >>> prediction_values(t, task="binary", labels=[0, 1]).to_pylist()
    [0.8, 0.1]
    """
    import pyarrow.compute as pc

    if task == "regression":
        return _regression_values(table.column("prediction"))
    if task not in ("binary", "multiclass"):
        raise InvalidInput(f"task {task!r} is not one of binary, multiclass, regression")
    if task == "binary" and kind != "categorical" and "probabilities" in table.column_names:
        probabilities = table.column("probabilities")
        if kind == "numeric" or probabilities.null_count < len(probabilities):
            return pc.list_element(probabilities.combine_chunks()
                                   if isinstance(probabilities, pa.ChunkedArray)
                                   else probabilities, 1).cast(pa.float64())
    return label_texts(table.column("prediction"))


def label_texts(predictions: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return JSON label texts (``"yes"``, ``1``, ``true``) as category text per row."""
    import json

    import pyarrow.compute as pc

    if isinstance(predictions, pa.ChunkedArray):
        predictions = predictions.combine_chunks() if predictions.num_chunks else \
            pa.array([], pa.string())
    encoded = pc.dictionary_encode(predictions.cast(pa.string()))
    texts = []
    for text in encoded.dictionary.to_pylist():
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = None
        texts.append(None if value is None or isinstance(value, (list, dict))
                     else category_text(value))
    return pa.array(texts, pa.string()).take(encoded.indices)


def _regression_values(predictions: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow.compute as pc

    if isinstance(predictions, pa.ChunkedArray):
        predictions = predictions.combine_chunks() if predictions.num_chunks else \
            pa.array([], pa.string())
    try:
        values = pc.cast(predictions, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = pa.array([_json_number(t) for t in predictions.to_pylist()], pa.float64())
    return _finite(values)[0]


def _json_number(text: str | None) -> float | None:
    import json

    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def window_keys(ts: pa.Array | pa.ChunkedArray, *, seconds: int) -> np.ndarray:
    """Return the epoch-millisecond start of each row's time window (UTC-aligned floors).

    >>> import datetime as dt
    >>> t = pa.array([dt.datetime(2026, 1, 1, 13, 5, tzinfo=dt.UTC)],
    ...              pa.timestamp("us", tz="UTC"))
    >>> window_keys(t, seconds=3600).tolist()   # 2026-01-01 13:00 UTC
    [1767272400000]
    """
    import numpy as np

    if seconds <= 0:
        raise InvalidInput(f"a window is a positive number of seconds, got {seconds}")
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks() if ts.num_chunks else pa.array([], pa.timestamp("us"))
    if not pa.types.is_timestamp(ts.type):
        raise InvalidInput(f"window_keys: ts must be a timestamp column, got {ts.type}")
    micros = np.asarray(ts.cast(pa.timestamp("us", tz=ts.type.tz)).cast(pa.int64())
                        .fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    width = int(seconds) * 1_000_000
    return (np.floor_divide(micros, width) * width) // 1000
