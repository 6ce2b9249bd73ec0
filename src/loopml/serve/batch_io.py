"""Reading in chunks and writing atomically: the file side of `loopml predict`.

:func:`rechunk` cuts record batches into tables of a fixed number of rows, :func:`_ahead`
makes the next item in a thread while this one is used, :class:`_Writer` streams tables to a
CSV or Parquet file in a thread, and :func:`_write_atomically` fills a temporary file beside
the target and renames it at the end, so a failure or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput
from loopml.files import publish

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.serve.batch_scorer import _Scorer


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """Yield ``items`` with the next one made in a thread meanwhile (one at most).

    Reading, parsing and preparing the next chunk overlap the model's run on this one
    (onnxruntime, pyarrow and numpy release the GIL); an error there is raised here.
    """
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    pool = ThreadPoolExecutor(1, thread_name_prefix="loopml-batch-read")
    try:
        pending = pool.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = pool.submit(next, items, end)
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the thread is done with ``items``
        close = getattr(items, "close", None)
        if close is not None:
            close()


def rechunk(batches: Iterable[Any], rows: int) -> Iterator[pa.Table]:
    """Yield tables of exactly ``rows`` rows (the last one shorter) from record ``batches``."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def _output_schema(schema: pa.Schema, scorer: _Scorer) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([*(schema.field(n) for n in scorer.keep), *scorer.output_fields()])


class _Writer:
    """A streaming CSV or Parquet writer of a fixed schema on one path.

    Each table is written in a thread while the next chunk is scored (encoding and
    compression overlap the model); one write at most is in flight, so memory stays bounded.
    """

    def __init__(self, path: Path, out_format: str, schema: pa.Schema) -> None:
        self.path, self.format, self.schema = path, out_format, schema
        self._sink: Any = None
        self._writer: Any = None
        self._pool: Any = None
        self._pending: Any = None

    def __enter__(self) -> _Writer:
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow as pa

        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.path, self.schema)
        else:
            import pyarrow.csv as csv

            gz = self.path.name.lower().endswith(".gz")
            self._sink = pa.output_stream(self.path, compression="gzip" if gz else None)
            self._writer = csv.CSVWriter(self._sink, self.schema)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="loopml-batch-write")
        return self

    def write(self, table: pa.Table) -> None:
        if table.schema != self.schema:
            table = table.cast(self.schema)
        self._wait()
        self._pending = self._pool.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # an error of the write is raised here

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            if kind is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True)
            self._writer.close()
            if self._sink is not None:
                self._sink.close()


def _write_atomically(target: Path, *, overwrite: bool, write: Callable[[Path], int]) -> int:
    """Return what ``write`` returns after it filled a temp file that then becomes ``target``."""
    import tempfile

    try:
        # the temp name keeps the target's suffixes: the writer picks gzip from them
        handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=f".tmp{''.join(target.suffixes)}")
    except OSError as exc:
        raise InvalidInput(f"output {str(target)!r}: cannot write in folder "
                           f"{str(target.parent)!r} ({exc.strerror or exc})") from exc
    os.close(handle)
    temp = Path(name)
    try:
        rows = write(temp)
        with open(temp, "rb") as done:
            os.fsync(done.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; scored rows are shared as files are
        publish(temp, target, overwrite=overwrite, what="output")
    except OSError as exc:  # reading errors are InvalidInput by now: this is the output's
        raise InvalidInput(f"output {str(target)!r} could not be written: "
                           f"{exc.strerror or exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return rows
