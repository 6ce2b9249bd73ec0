"""Stream a source into a Parquet snapshot while hashing its content and applying the PII policy.

Checks that need the data itself happen here, before anything is stored: duplicate or
empty column names, text that is not UTF-8, a quote never closed, a
column that mixes numbers and words, a file with a header but no rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from loopml.data import pii
from loopml.data.hashing import TableHasher
from loopml.data.sources import Source, read_batches
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (rows so far, estimated bytes read so far)
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
MIXED_MIN_SHARE = 0.5  # a text column whose values are mostly numbers is "mixed"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    content_hash: str
    num_rows: int
    schema: pa.Schema
    pii_found: list[pii.PiiFinding]
    pii_applied: dict[str, str]


def write_snapshot(
    source: Source,
    dest: Path,
    *,
    pii_policies: Mapping[str, str] | None = None,
    pii_key: bytes = b"",
    progress: Progress | None = None,
) -> Snapshot:
    """Write ``source`` to the Parquet file ``dest``; return what was written.

    ``dest`` is left behind only when this returns; on any error it is removed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.data.sources import BLOCK_BYTES

    schema, batches = read_batches(source)
    check_columns(source, schema)
    batches = prefetch(batches)  # parse the next block while this one is hashed and written
    writer: pq.ParquetWriter | None = None
    hasher: TableHasher | None = None
    found: list[pii.PiiFinding] = []
    policies: dict[str, str] = {}
    sensitive = pii.sensitive_columns({}, pii_policies or {})
    last: pa.RecordBatch | None = None
    rows = 0
    try:
        for index, raw in enumerate(mask_reader_errors(batches, sensitive)):
            batch = normalize(raw)
            if index == 0:
                found = pii.detect(batch)
                policies = pii.check_policies(pii_policies or {}, batch.schema.names)
                sensitive.update(pii.sensitive_columns({f.column: f.kind for f in found},
                                                       policies))
                if source.kind in ("csv", "jsonl"):
                    check_text(source, batch, sensitive=sensitive)
            if batch.num_rows:
                last = batch
            batch = pii.apply(batch, policies, key=pii_key)
            if writer is None:
                # Dictionary encoding pays off for text and flags; on floats and ids pyarrow
                # tries it, gives up, and the attempt was half the write time.
                encoded = [f.name for f in batch.schema
                           if pa.types.is_string(f.type) or pa.types.is_boolean(f.type)]
                writer = pq.ParquetWriter(dest, batch.schema, compression="zstd",
                                          use_dictionary=encoded)
                hasher = TableHasher(batch.schema)
            elif not batch.schema.equals(writer.schema):
                raise InvalidInput(
                    f"{source.location}: the columns' types change part-way through "
                    f"(first {writer.schema}, later {batch.schema})"
                )
            writer.write_batch(batch)
            hasher.update(batch)  # type: ignore[union-attr]
            rows += batch.num_rows
            if progress is not None:
                progress(rows, (index + 1) * BLOCK_BYTES)
        if writer is None or rows == 0:
            what = "a header but no rows" if len(schema) else "no rows"
            raise InvalidInput(f"{source.location}: the data has {what}")
        check_unterminated_quote(source, last)
        writer.close()
        writer = None
    except BaseException:
        if writer is not None:
            writer.close()
        dest.unlink(missing_ok=True)
        raise
    return Snapshot(path=dest, content_hash=hasher.hexdigest(), num_rows=rows,  # type: ignore[union-attr]
                    schema=pq.read_schema(dest), pii_found=found, pii_applied=policies)


def mask_reader_errors(batches: Iterator[pa.RecordBatch],
                   sensitive: Mapping[str, str]) -> Iterator[pa.RecordBatch]:
    """Yield ``batches``; a reader error quoting a value of a personal column is masked.

    ``sensitive`` ({column: kind}) is filled in once the first batch has been looked at.
    """
    try:
        yield from batches
    except InvalidInput as exc:
        column, value = getattr(exc, "column", None), getattr(exc, "value", None)
        if value is None:
            raise
        quoted = pii.shown(value, sensitive.get(column))
        if quoted == repr(value):
            raise
        message = str(exc).replace(repr(value), quoted)
        raise InvalidInput(message) from exc.__cause__


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items``, reading up to ``depth`` ahead on a background thread.

    Arrow's CSV parser and Parquet writer release the GIL, so reading block n+1 while
    block n is hashed and written keeps both cores busy. Errors are re-raised here, in the
    consumer; when the consumer stops early, the reader thread stops too.
    """
    import queue
    import threading

    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            box.put(("error", exc))

    thread = threading.Thread(target=read, name="loopml-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()


def normalize(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Decode dictionary columns, use one string type and one time unit, so formats hash alike.

    Timestamps become microseconds: Parquet cannot hold seconds (pandas writes them as
    milliseconds) while a CSV parses as seconds; nanoseconds stay when they carry any.
    """
    import pyarrow as pa

    changed = False
    arrays = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.dictionary_decode()
            kind = column.type
            changed = True
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            column = column.cast(pa.string())
            changed = True
        if pa.types.is_timestamp(kind) and kind.unit != "us":
            try:
                column = column.cast(pa.timestamp("us", tz=kind.tz))  # safe: refuses to lose ns
                changed = True
            except pa.ArrowInvalid:
                pass
        arrays.append(column)
    if not changed:
        return batch.replace_schema_metadata(None)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def check_columns(source: Source, schema: pa.Schema) -> None:
    """Refuse duplicate or empty column names."""
    names = schema.names
    if not names:
        raise InvalidInput(f"{source.location}: the data has no columns")
    seen: set[str] = set()
    folded: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise InvalidInput(f"{source.location}: column {position} has an empty name; "
                               "give every column a header")
        if name in seen:
            raise InvalidInput(f"{source.location}: column name {name!r} appears more than "
                               "once; rename the duplicates")
        # SQL engines (DuckDB profiles and validates) match names regardless of case, so
        # 'A' and 'a' would read one another's values.
        if name.casefold() in folded:
            raise InvalidInput(f"{source.location}: columns {folded[name.casefold()]!r} and "
                               f"{name!r} differ only in case; rename one of them")
        seen.add(name)
        folded[name.casefold()] = name


def check_text(source: Source, batch: pa.RecordBatch, *,
               sensitive: Mapping[str, str] | None = None) -> None:
    """Refuse non-UTF-8 text and columns that mix numbers and words.

    Values of ``sensitive`` columns ({column: kind of personal data}) are shown masked.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    sensitive = sensitive or {}
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise InvalidInput(
                f"{source.location}: column {field.name!r} is not valid UTF-8 text (an "
                "encoding error); re-save the file as UTF-8 or pass its encoding "
                "(--encoding latin-1)"
            )
        if not pa.types.is_string(field.type):
            continue
        values = column.drop_null()
        if len(values) == 0:
            continue
        numeric = pc.match_substring_regex(values, "^" + _NUMBER.pattern + "$")
        share = pc.sum(pc.cast(numeric, pa.int64())).as_py() / len(values)
        if MIXED_MIN_SHARE <= share < 1:
            examples = sorted(set(values.filter(pc.invert(numeric)).slice(0, 200).to_pylist()))
            quoted = [pii.shown(v, sensitive.get(field.name)) for v in examples[:5]]
            shown = ", ".join(quoted)
            if any(q != repr(v) for q, v in zip(quoted, examples, strict=False)):
                fix = "declare them missing with --null-values"  # never repeat a masked value
            else:
                fix = f"declare them missing with --null-values {','.join(examples[:3])!r}"
            raise InvalidInput(
                f"{source.location}: column {field.name!r} mixes numbers with text "
                f"({share:.0%} numbers; others: {shown}); fix those values, or {fix}"
            )


def check_unterminated_quote(source: Source, last: pa.RecordBatch | None) -> None:
    """Refuse a CSV whose last quoted value is never closed.

    Quoted values may hold line breaks (RFC 4180), so an unclosed quote does not break the
    parse: it swallows the rest of the file into the last row. Only then does that row hold
    a multi-line value; then the file is read once more by Python's strict CSV parser, which
    tells a quote closed at the end of the file from one that never is (counting quote
    characters cannot: a literal quote in an unquoted value, `5 foot 11"`, is legal).
    """
    import csv
    import io
    import sys

    import pyarrow as pa

    if source.kind != "csv" or last is None:
        return
    spanning = [field.name for field, column in zip(last.schema, last.columns, strict=True)
                if pa.types.is_string(field.type) and "\n" in (column[-1].as_py() or "")]
    if not spanning:
        return
    delimiter = "\t" if source.location.lower().endswith((".tsv", ".tsv.gz")) else ","
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # one huge quoted value is what we are looking for
    try:
        with pa.input_stream(source.location, compression="detect") as raw, \
                io.TextIOWrapper(io.BufferedReader(raw), encoding=source.encoding,
                                 newline="") as text:
            for _ in csv.reader(text, delimiter=delimiter, strict=True):
                pass
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return  # not our question: Arrow already read the file its own way
        raise InvalidInput(
            f"{source.location}: a quoted value in column {spanning[0]!r} is never closed — "
            "an unterminated quote runs to the end of the file; add the closing quote "
            '(a quote inside a quoted value is written twice: "")'
        ) from None
    finally:
        csv.field_size_limit(limit)
