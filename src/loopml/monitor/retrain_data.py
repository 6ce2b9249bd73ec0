"""The retraining data: labelled production rows from the prediction log, typed as the dataset.

The steps the policy (:mod:`loopml.monitor.retrain`) calls:

- :func:`labelled_rows`: the predictions of one model (any version) that have a label,
  read segment by segment so only labelled rows stay in memory;
- :func:`typed_rows`: their logged inputs and labels cast back to the columns and types of
  the champion's training dataset (columns the log never carries are left empty);
- :func:`holdout_mask`: a deterministic split of rows into a training part and a gate
  holdout, by a seeded hash of ``(request_id, row)``, so a row keeps its part across runs;
- :func:`add_version`: a table added to the catalog as a dataset version, personal columns
  kept as the champion's version stored them (:func:`kept_pii`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

    from loopml.data.catalog import AddResult
    from loopml.data.contract import Contract
    from loopml.data.validate import Violation
    from loopml.predlog.read import Skipped

#: Rows of the log joined to the labels at once: one hash table of the labels per batch.
JOIN_ROWS = 262_144
#: The columns of :func:`labelled_rows`' table.
LABELLED_SCHEMA = pa.schema([
    pa.field("request_id", pa.string()),
    pa.field("row", pa.int64()),
    pa.field("ts", pa.timestamp("us", tz="UTC")),
    pa.field("version", pa.int64()),
    pa.field("inputs", pa.string()),
    pa.field("label_ts", pa.timestamp("us", tz="UTC")),
])


@dataclass
class LabelledRows:
    """Labelled predictions of one model, with the counts of what was left out."""

    table: pa.Table        # LABELLED_SCHEMA columns
    labels: list[Any]      # the label of each row, the model's label type (aligned with table)
    predictions: int       # every logged prediction of the model
    unlabelled: int        # of those, rows without a usable label (none yet, or invalid)
    invalid_labels: int    # labels that are not one of the model's classes (or not a number)
    repeated: int          # rows logged twice under one (request_id, row): the later kept


def labelled_rows(folder: str | os.PathLike[str], *, model: str, task: str,
                  classes: Sequence[Any] | None, skipped: Skipped | None = None,
                  progress: Callable[[int, int], None] | None = None) -> LabelledRows:
    """Return the labelled predictions of ``model`` in the log at ``folder``, oldest first.

    Labels are the latest per ``(request_id, row)`` (see :mod:`loopml.monitor.labels`);
    a ``(request_id, row)`` logged twice keeps its later prediction. Segments are read one
    at a time and joined to the labels in batches of about :data:`JOIN_ROWS` rows, so memory
    holds one batch and the labelled rows. ``progress(done, total)`` counts segments;
    unreadable ones are appended to ``skipped``.
    """
    import numpy as np
    import pyarrow.compute as pc

    from loopml.monitor.labels import join_labels, latest_labels
    from loopml.predlog import iter_segments, list_segments

    labels = latest_labels(folder, skipped=skipped)
    parts: list[pa.Table] = []
    values: list[Any] = []
    counts = {"total": 0, "invalid": 0}
    pending: list[pa.Table] = []

    def join(batch: list[pa.Table]) -> None:
        mine = pa.concat_tables(batch)
        counts["total"] += mine.num_rows
        joined = join_labels(mine, labels, task=task, classes=classes)
        counts["invalid"] += joined.invalid_labels
        keep = joined.mask
        if keep.any():
            where = pa.array(keep)
            parts.append(pa.table({
                "request_id": mine.column("request_id"), "row": mine.column("row"),
                "ts": mine.column("ts"), "version": mine.column("version"),
                "inputs": mine.column("inputs"), "label_ts": joined.label_ts,
            }, schema=LABELLED_SCHEMA).filter(where))
            values.extend(joined.y_true.filter(where).to_pylist())

    # Listed first for the progress total; segments published meanwhile are read too.
    position = {s.path: i for i, s in enumerate(list_segments(folder), start=1)}
    for path, segment in iter_segments(folder, skipped=skipped):
        mine = segment.filter(pc.equal(segment.column("model"), model))
        if mine.num_rows:
            pending.append(mine.select(["request_id", "row", "ts", "version", "inputs"]))
        if sum(t.num_rows for t in pending) >= JOIN_ROWS:
            join(pending)
            pending = []
        if progress is not None:
            progress(position.get(path, len(position)), len(position))
    if pending:
        join(pending)
    total, invalid = counts["total"], counts["invalid"]
    table = pa.concat_tables(parts) if parts else LABELLED_SCHEMA.empty_table()
    repeated = 0
    if table.num_rows:
        import pandas as pd

        keys = pd.DataFrame({"r": table.column("request_id").to_numpy(zero_copy_only=False),
                             "i": table.column("row").to_numpy()})
        last = ~keys.duplicated(keep="last").to_numpy()
        repeated = int((~last).sum())
        order = np.argsort(table.column("ts").cast(pa.int64()).to_numpy()[last], kind="stable")
        index = np.flatnonzero(last)[order]
        table = table.take(pa.array(index))
        values = [values[i] for i in index]
    return LabelledRows(table=table, labels=values, predictions=total,
                        unlabelled=total - len(values) - repeated, invalid_labels=invalid,
                        repeated=repeated)


# -------------------------------------------------------------------------------- typed rows

@dataclass
class TypedRows:
    """Production rows as a table with the dataset's schema, and what could not be filled."""

    table: pa.Table
    absent: list[str] = field(default_factory=list)          # dataset columns not logged
    invalid: dict[str, int] = field(default_factory=dict)    # column -> values not castable


def typed_rows(rows: LabelledRows, schema: pa.Schema, *, target: str,
               kinds: dict[str, str]) -> TypedRows:
    """Return ``rows`` as a table with exactly the fields of ``schema`` (all nullable).

    ``kinds`` maps the model's input columns to their signature kind (number, category,
    datetime): those come from the logged inputs; ``target`` from the labels; every other
    dataset column (ids, sensitive or personal columns the model does not take) is empty,
    since the log never holds it. A value that cannot be read as its column's type is left
    empty and counted in ``invalid``.
    """
    n = rows.table.num_rows
    logged, unread = _parse_inputs(rows.table.column("inputs"), kinds) if n else ({}, {})
    columns, absent, invalid = [], [], dict(unread)
    fields = [f.with_nullable(True) for f in schema]
    for f in fields:
        if f.name == target:
            raw: pa.Array | list[Any] | None = rows.labels
        else:
            raw = logged.get(f.name) if f.name in kinds else None
        if raw is None:
            absent.append(f.name)
            columns.append(pa.nulls(n, f.type))
            continue
        array, bad = _to_arrow(raw, f.type)
        if bad:
            invalid[f.name] = invalid.get(f.name, 0) + bad
        columns.append(array)
    return TypedRows(pa.Table.from_arrays(columns, schema=pa.schema(fields)), absent, invalid)


def _parse_inputs(texts: pa.ChunkedArray | pa.Array, kinds: dict[str, str]
                  ) -> tuple[dict[str, pa.Array | list[Any]], dict[str, int]]:
    """Return the logged input values per column (an Arrow array, or Python values), one
    per row, and per column how many were not readable as its kind (left missing)."""
    try:  # the monitor's vectorised parser, which reads values as the server read them
        from loopml.monitor.logscan import parse_inputs
    except ImportError:
        parse_inputs = None
    if parse_inputs is not None:
        wanted = {name: {"number": "numeric", "category": "categorical"}.get(kind, kind)
                  for name, kind in kinds.items()}
        table, invalid = parse_inputs(texts, wanted)
        counts = {name: int(mask.to_numpy(zero_copy_only=False).sum())
                  for name, mask in invalid.items()}
        return ({name: table.column(name).combine_chunks() for name in kinds
                 if name in table.column_names}, {k: v for k, v in counts.items() if v})
    out: dict[str, list[Any]] = {name: [] for name in kinds}
    for text in texts.to_pylist():
        try:
            record = json.loads(text) if text else {}
        except ValueError:
            record = {}
        if not isinstance(record, dict):
            record = {}
        for name, values in out.items():
            values.append(record.get(name))
    return out, {}


def _to_arrow(values: pa.Array | list[Any], kind: pa.DataType) -> tuple[pa.Array, int]:
    """Return ``values`` as an array of type ``kind`` and how many could not be cast."""
    if isinstance(values, pa.Array):
        fast = _cast_array(values, kind)
        if fast is not None:
            return fast
        values = values.to_pylist()
    convert = _converter(kind)
    out, bad = [], 0
    for value in values:
        if value is None:
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except (TypeError, ValueError, OverflowError, OSError):
            out.append(None)
            bad += 1
    return pa.array(out, type=kind), bad


def _cast_array(values: pa.Array, kind: pa.DataType) -> tuple[pa.Array, int] | None:
    """Return the common casts of the parser's columns at once (None: go value by value).

    Numbers to floats as they are, to whole numbers when they are whole; text to text.
    """
    import numpy as np

    if pa.types.is_floating(values.type) and pa.types.is_floating(kind):
        return values.cast(kind), 0
    if pa.types.is_floating(values.type) and pa.types.is_integer(kind):
        numbers = values.to_numpy(zero_copy_only=False)
        present = ~np.isnan(numbers)
        whole = present & (np.floor(np.where(present, numbers, 0)) == numbers)
        info = np.iinfo(kind.to_pandas_dtype())
        whole &= (numbers >= info.min) & (numbers <= info.max)
        return (pa.array(np.where(whole, numbers, 0).astype(kind.to_pandas_dtype()),
                         mask=~whole), int((present & ~whole).sum()))
    if pa.types.is_string(values.type) and (pa.types.is_string(kind)
                                            or pa.types.is_large_string(kind)):
        return values.cast(kind), 0
    return None


def _converter(kind: pa.DataType) -> Callable[[Any], Any]:
    """Return the function that turns one logged JSON value into a value of ``kind``."""
    if pa.types.is_boolean(kind):
        return _as_bool
    if pa.types.is_integer(kind):
        return _as_int
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return _as_float
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _as_text
    if pa.types.is_timestamp(kind):
        zone = kind.tz

        def timestamp(value: Any) -> datetime:
            moment = _as_datetime(value)
            return moment if zone else moment.astimezone(UTC).replace(tzinfo=None)

        return timestamp
    if pa.types.is_date(kind):
        return lambda value: _as_datetime(value).date()

    def unsupported(value: Any) -> Any:
        raise TypeError(f"no conversion to {kind}")

    return unsupported


def _number(value: Any) -> float:
    """Return a JSON number (true/false as 1/0, as the server reads them) as a float."""
    if isinstance(value, str):
        raise TypeError("text where a number was expected")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _as_float(value: Any) -> float | None:
    try:
        return _number(value)
    except ValueError:
        if isinstance(value, float):  # NaN: missing, as in the dataset
            return None
        raise


def _as_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number != int(number):
        raise ValueError("a fraction where a whole number was expected")
    return int(number)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    number = _number(value)
    if number not in (0, 1):
        raise ValueError("not a true/false value")
    return bool(number)


def _as_text(value: Any) -> str:
    """Return a category as the server gave it to the model: ``3`` and ``3.0`` give "3"."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)  # "True", the text the server gave the model
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError("not a category value")


def _as_datetime(value: Any) -> datetime:
    """Return an aware UTC datetime of ISO text or epoch seconds (naive text is UTC)."""
    if isinstance(value, bool):
        raise TypeError("true/false where a time was expected")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        return datetime.fromtimestamp(_number(value), UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ------------------------------------------------------------------------------------ split

def holdout_mask(request_ids: Sequence[str], rows: Sequence[int], *, share: float,
                 seed: int) -> np.ndarray:
    """Return True for the rows kept aside as the gate holdout (about ``share`` of them).

    The draw is a seeded hash of ``(request_id, row)``: the same row lands in the same part
    on every run, however many rows arrive around it.

    >>> holdout_mask(["a", "b", "c", "d"], [0, 0, 0, 0], share=0.5, seed=3).tolist()
    [False, True, True, False]
    """
    import numpy as np

    salt = f"loopml-retrain:{seed}:".encode()
    draws = np.fromiter(
        (int.from_bytes(hashlib.blake2b(salt + f"{r}\x00{i}".encode(), digest_size=8).digest(),
                        "big") / 2.0 ** 64 for r, i in zip(request_ids, rows, strict=True)),
        dtype=np.float64, count=len(request_ids))
    return draws < share


# --------------------------------------------------------------------------- dataset versions

def kept_pii(info: dict[str, Any], columns: list[str]) -> dict[str, str]:
    """Return the PII policies for a new version built from a stored one (``info``: its
    ``pii`` record): ``keep`` for every personal column it holds.

    Its values are already as the policy left them (hashing a hashed column again would
    garble the champion's rows); ``keep`` still marks them personal, so profiles, reports
    and the contract mask them.

    >>> kept_pii({"found": {"email": "email"}, "applied": {"email": "hash", "ref": "drop"}},
    ...          ["email", "age"])
    {'email': 'keep'}
    """
    found = dict(info.get("found") or {})
    applied = dict(info.get("applied") or {})
    return {c: "keep" for c in sorted({*found, *applied})
            if applied.get(c) != "drop" and c in columns}


def _snapshot_path(catalog: Any, version: Any, folder: str) -> Path:
    return catalog.artifacts.get_to_path(version.snapshot_sha256, Path(folder, "data.parquet"))


def snapshot_schema(catalog: Any, version: Any) -> pa.Schema:
    """Return the Arrow schema of a dataset version's stored snapshot (no metadata)."""
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix=f"loopml-retrain-{os.getpid()}-") as tmp:
        return pq.read_schema(_snapshot_path(catalog, version, tmp)).remove_metadata()


def snapshot_table(catalog: Any, version: Any) -> pa.Table:
    """Return a dataset version's rows as stored, as an Arrow table (no metadata)."""
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix=f"loopml-retrain-{os.getpid()}-") as tmp:
        return pq.read_table(_snapshot_path(catalog, version, tmp)).replace_schema_metadata(None)


def add_version(catalog: Any, table: pa.Table, *, name: str, project: str, target: str,
                pii: dict[str, str], label: str) -> AddResult:
    """Return the result of adding ``table`` as the next version of dataset ``name``
    (the version holding the same content, if there is one)."""
    import tempfile

    import pyarrow.parquet as pq

    from loopml.data import resolve_source

    with tempfile.TemporaryDirectory(prefix=f"loopml-retrain-{os.getpid()}-") as tmp:
        path = Path(tmp, f"{name}-retrain-{label}.parquet")
        pq.write_table(table, path)
        return catalog.add(resolve_source(path), name=name, project=project, target=target,
                           pii=pii)


def contract_violations(table: pa.Table, contract: Contract) -> list[Violation]:
    """Return the errors ``table``'s rows give against ``contract`` (as ``data validate``)."""
    import tempfile

    import pyarrow.parquet as pq

    from loopml.data.sources import Source
    from loopml.data.validate import validate

    with tempfile.TemporaryDirectory(prefix=f"loopml-retrain-{os.getpid()}-") as tmp:
        path = Path(tmp, "holdout.parquet")
        pq.write_table(table, path)
        report = validate(Source("parquet", str(path)), contract)
    return [v for v in report.violations if v.severity == "error"]
