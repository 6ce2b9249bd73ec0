"""Open a data source as a stream of Arrow record batches, with bounded memory.

Sources: a CSV, Parquet or JSON-lines file, a folder of Parquet files, or a SQL query on
any SQLAlchemy URL. Every reader error is translated here into one
:class:`~loopml.errors.InvalidInput` that names the source and says how to fix it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

# CSV/JSON block: types are inferred from the first one (tens of thousands of rows).
# Arrow reads up to 32 blocks ahead, so this also bounds memory: 4 MB keeps a 1 GB
# ingest under ~400 MB where 16 MB blocks peaked at ~900 MB (bench/RESULTS.md).
BLOCK_BYTES = 4 << 20
SQL_BATCH_ROWS = 50_000
FORMATS = ("csv", "parquet", "jsonl", "sql")


@dataclass(frozen=True)
class Source:
    """Where data comes from, as the user named it."""

    kind: str
    location: str
    query: str | None = None
    null_values: tuple[str, ...] = ("",)
    encoding: str = "utf8"
    size_bytes: int | None = field(default=None, compare=False)

    def describe(self) -> str:
        """Return a one-line description, as recorded with the dataset version."""
        if self.kind == "sql":
            return f"sql: {self.query} @ {_hide_password(self.location)}"
        return f"{self.kind}: {self.location}"


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported when it is opened
        return url


def resolve_source(
    path: str | os.PathLike[str] | None = None,
    *,
    sql: str | None = None,
    url: str | None = None,
    format: str | None = None,
    null_values: tuple[str, ...] = ("",),
    encoding: str = "utf8",
) -> Source:
    """Return the Source for a file/folder path, or for a SQL query on ``url``.

    >>> resolve_source(sql="select 1", url="sqlite:///data.db").kind
    'sql'
    """
    if sql is not None or url is not None:
        if not sql or not url:
            raise InvalidInput("a SQL source needs both --sql 'select …' and --url DATABASE_URL")
        _check_sql_url(url)
        return Source("sql", url, query=sql)
    if path is None:
        raise InvalidInput("give a data file or folder, or --sql with --url")
    location = Path(path).expanduser()
    if location.is_dir():
        files = sorted(location.rglob("*.parquet"))
        if not files:
            raise InvalidInput(f"folder {location} has no .parquet files")
        return Source("parquet", str(location.resolve()), null_values=null_values,
                      size_bytes=sum(f.stat().st_size for f in files))
    if not location.is_file():
        raise InvalidInput(f"{location}: no such file or folder")
    kind = format or _kind_from_suffix(location)
    if kind not in FORMATS[:3]:
        raise InvalidInput(f"format {kind!r} is not one of csv, parquet, jsonl")
    return Source(kind, str(location.resolve()), null_values=null_values, encoding=encoding,
                  size_bytes=location.stat().st_size)


def _check_sql_url(url: str) -> None:
    """Refuse a URL no ingest can read: an in-memory SQLite database is empty and private.

    >>> _check_sql_url("sqlite://")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopml.errors.InvalidInput: --url 'sqlite://' is an in-memory SQLite database, ...
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(f"--url {_hide_password(url)!r} is not a database URL; expected "
                           "DIALECT://USER@HOST/DB or sqlite:///path/to/file.db") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:") \
            or "mode=memory" in url:
        raise InvalidInput(f"--url {url!r} is an in-memory SQLite database, which is empty "
                           "and private to one connection; allowed: a file, "
                           "sqlite:///path/to/file.db")


def _kind_from_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".gz"], [".bz2"], [".zst"]):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    kinds = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
             ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
    if last not in kinds:
        raise InvalidInput(
            f"{path}: cannot tell the format from {last or 'no suffix'!r}; "
            "use .csv, .parquet or .jsonl, or pass --format"
        )
    return kinds[last]


def read_batches(source: Source) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Open ``source``; return its schema and an iterator over its record batches."""
    openers = {"csv": _read_csv, "csv-text": _read_csv_as_text, "parquet": _read_parquet,
               "jsonl": _read_jsonl, "sql": _read_sql}
    return openers[source.kind](source)


# The type may hold brackets and commas: timestamp[s], date32[day], decimal128(5, 2).
# Arrow's serial reader (one CPU thread, e.g. with OMP_NUM_THREADS=1) names the row too
_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (.+?): "
                         r"invalid value '(.*)'$", re.DOTALL)
_RAGGED = re.compile(r"(Expected \d+ columns, got \d+)(: .*)?$", re.DOTALL)


def _arrow_error(source: Source, exc: Exception, schema: pa.Schema | None = None
                 ) -> InvalidInput:
    """Return the InvalidInput for a reader error; it never quotes a whole row of the file.

    A conversion error keeps the offending value and records it (with its column) on the
    error as ``column`` and ``value``, so the caller can mask it when the column is personal.
    """
    text = str(exc).strip()
    message = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    column = value = None
    if "utf8" in lowered or "utf-8" in lowered or isinstance(exc, UnicodeDecodeError):
        message = "text is not valid UTF-8" if "utf8" in lowered or "utf-8" in lowered \
            else message
        hint = (f" — an encoding error, not bad values: the file is not {source.encoding}; "
                "pass its encoding with --encoding (e.g. latin-1, cp1252)")
    elif (ragged := _RAGGED.search(text)) is not None:
        # Arrow appends the raw row, which may hold personal data: keep only the counts.
        message = f"CSV parse error: {ragged.group(1)}"
        hint = (" (a row has more or fewer fields than the header: check delimiters and "
                "quoting — an unterminated quote joins the rows after it)")
    elif (conversion := _CONVERSION.search(text)) is not None:
        index, kind, value = int(conversion.group(1)), conversion.group(2), conversion.group(3)
        column = schema.names[index] if schema is not None and index < len(schema) \
            else f"#{index + 1}"
        message = f"column {column!r} holds {value!r}, not {kind}"
        hint = (" (a column changes type part-way through the file: fix the values, or "
                "declare extra null markers with --null-values)")
    elif "conversion error" in lowered:
        message = message.split("invalid value", 1)[0].rstrip(": ")  # never the value itself
        hint = (" (a column changes type part-way through the file: fix the values, or declare "
                "extra null markers with --null-values)")
    else:
        hint = ""
    error = InvalidInput(f"{source.location}: {message}{hint}")
    error.column, error.value = column, value  # type: ignore[attr-defined]
    return error


def _read_csv_as_text(source: Source) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Read a CSV with every column as text (validation checks the types itself)."""
    import pyarrow as pa

    schema, batches = _read_csv(source)
    del batches
    return _read_csv(source, column_types={name: pa.string() for name in schema.names})


def _read_csv(source: Source, column_types: dict | None = None
              ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow as pa
    from pyarrow import csv

    delimiter = "\t" if source.location.lower().endswith((".tsv", ".tsv.gz")) else ","
    try:
        reader = csv.open_csv(
            source.location,
            read_options=csv.ReadOptions(block_size=BLOCK_BYTES, encoding=source.encoding),
            # Quoted values may span lines (RFC 4180); an unterminated quote is caught
            # after the last block (snapshot.check_unterminated_quote).
            parse_options=csv.ParseOptions(delimiter=delimiter,
                                           newlines_in_values=True),
            convert_options=csv.ConvertOptions(
                null_values=list(source.null_values), strings_can_be_null=True,
                quoted_strings_can_be_null=False, column_types=column_types,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError) as exc:
        if "Empty CSV file" in str(exc):
            raise InvalidInput(
                f"{source.location}: the file is empty (no header, no rows)"
            ) from exc
        raise _arrow_error(source, exc) from exc
    return reader.schema, _guard(source, iter(reader), reader.schema)


def _read_parquet(source: Source) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(source.location, format="parquet")
        scanner = dataset.scanner(batch_size=128_000)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _arrow_error(source, exc) from exc
    return dataset.schema, _guard(source, scanner.to_batches())


def _read_jsonl(source: Source) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow as pa
    from pyarrow import json

    if Path(source.location).stat().st_size == 0:
        raise InvalidInput(f"{source.location}: the file is empty (no rows)")
    try:
        reader = json.open_json(source.location,
                                read_options=json.ReadOptions(block_size=BLOCK_BYTES))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _arrow_error(source, exc) from exc
    return reader.schema, _guard(source, iter(reader))


def _guard(source: Source, batches: Iterator[pa.RecordBatch], schema: pa.Schema | None = None
           ) -> Iterator[pa.RecordBatch]:
    """Re-raise a reader's mid-stream errors as InvalidInput naming the file."""
    import pyarrow as pa

    try:
        yield from batches
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, OSError) as exc:
        raise _arrow_error(source, exc, schema) from exc


def _read_sql(source: Source) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    try:
        engine = create_engine(source.location)
        conn = engine.connect().execution_options(stream_results=True)
        result = conn.execute(text(source.query or ""))
    except (ArgumentError, NoSuchModuleError, DBAPIError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise InvalidInput(f"SQL source {_hide_password(source.location)}: {detail}") from exc
    columns = list(result.keys())
    try:
        first = result.fetchmany(SQL_BATCH_ROWS)
        first_batch = _rows_to_batch(source, columns, first)
    except BaseException:
        conn.close()
        engine.dispose()
        raise
    schema = first_batch.schema

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            if first:
                yield first_batch
            while rows := result.fetchmany(SQL_BATCH_ROWS):
                yield _rows_to_batch(source, columns, rows, schema)
        finally:
            conn.close()
            engine.dispose()

    return schema, _guard(source, batches())


def _rows_to_batch(source: Source, columns: list[str], rows: list,
                   schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Return rows as a batch; a column whose values mix types is an InvalidInput naming it.

    Values are never quoted in the message (they may be personal data), only their types.
    """
    import pyarrow as pa

    arrays = []
    for index, name in enumerate(columns):
        values = [row[index] for row in rows]
        kind = schema.field(index).type if schema is not None else None
        try:
            arrays.append(pa.array(values, type=kind))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            found = sorted({type(v).__name__ for v in values if v is not None})
            expected = f"{kind} (the type of its first rows)" if kind is not None \
                else "one type"
            raise InvalidInput(
                f"SQL source {_hide_password(source.location)}: column {name!r} mixes value "
                f"types ({', '.join(found)}) where {expected} was expected; cast it in the "
                f"query, e.g. CAST({name} AS TEXT)"
            ) from exc
    if schema is None:
        return pa.RecordBatch.from_arrays(arrays, names=columns)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
