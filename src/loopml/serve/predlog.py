"""The prediction log: every served row (and every feedback label) as Parquet segments.

The server hands records to :meth:`PredictionLog.write`, which only appends them to a bounded
in-memory queue and returns at once (``False`` when the queue is full: the server answers 503
rather than wait). One background thread turns what is queued into a Parquet *segment* every
``flush_rows`` rows or ``flush_seconds`` seconds, whichever comes first, so segments are bounded
by size and by time. Monitoring reads the segments back with :func:`read_log`,
:func:`iter_segments` or, keeping a cursor, :func:`segments_after`; they, the schemas and the
sinks live in :mod:`loopml.predlog`, below both the server and the monitor.

Layout, under the log folder (a path, ``file://`` URL or any fsspec URL)::

    <kind>/<YYYY-MM-DD>/<epoch_ms>-<pid>-<token>-<seq>.parquet

``kind`` is ``predictions`` or ``feedback``; the day and ``epoch_ms`` are UTC and taken when the
segment is published, so names sort by time (``epoch_ms`` has 13 digits until 2286). ``token``
is random per log, because several servers in containers can share a folder and all be pid 1.

Crash safety (local folders): each segment is written whole to a locked ``.*.parquet.tmp`` file
in its day folder, fsynced, renamed into place with :func:`os.replace` and its folder fsynced. A
SIGKILL therefore loses at most the rows not yet flushed, and never leaves a visible partial
segment; a leftover ``.tmp`` is ignored by readers and removed by the next :meth:`start`. On
other fsspec filesystems a segment is one ``pipe`` (one PUT on object stores, which publish it
whole); a torn or foreign file found anyway is skipped by the readers and reported.

>>> log = PredictionLog("/tmp/log").start()        # doctest: +SKIP
>>> log.write([{"request_id": "r1", "row": 0, "model": "credit", "version": 3,
...             "flavour": "onnx", "latency_ms": 1.2, "prediction": 1,
...             "probabilities": [0.2, 0.8], "inputs": {"age": 41}}])  # doctest: +SKIP
True
>>> log.close()                                      # doctest: +SKIP
True
>>> read_log("/tmp/log").num_rows                    # doctest: +SKIP
1
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from loopml.errors import InvalidInput
from loopml.predlog.format import (
    FEEDBACK_SCHEMA,
    KINDS,
    PREDICTION_SCHEMA,
    ROW_MAKERS,
    Record,
    TornSegment,
    log,
    to_json,
)

# the readers, re-exported: ``from loopml.serve.predlog import read_log`` keeps working
from loopml.predlog.read import (
    Segment,
    iter_segments,
    list_segments,
    read_log,
    read_segment,
    segments_after,
)
from loopml.predlog.sinks import sink_for

__all__ = [
    "FEEDBACK_SCHEMA",
    "KINDS",
    "PREDICTION_SCHEMA",
    "PredictionLog",
    "Segment",
    "TornSegment",
    "iter_segments",
    "list_segments",
    "read_log",
    "read_segment",
    "segments_after",
    "to_json",
]


# ---------------------------------------------------------------------------------- writer


@dataclass
class _Batch:
    """The records of one ``write`` call; a request's rows stay in one segment."""

    records: list[Record]
    at: float  # time.monotonic() when queued, for the flush_seconds deadline
    ts_us: int  # wall time when queued: the ts of records that carry none


class PredictionLog:
    """A non-blocking writer of prediction (or feedback) records to Parquet segments.

    Parameters
    ----------
    folder : str or PathLike
        The log folder: a path, a ``file://`` URL or any fsspec URL (``s3://bucket/log``).
    kind : {"predictions", "feedback"}
        Which records, and so which schema (:data:`PREDICTION_SCHEMA`, :data:`FEEDBACK_SCHEMA`).
    flush_rows : int
        A segment is written once this many rows are queued.
    flush_seconds : float
        ...or once the oldest queued row has waited this long.
    queue_rows : int
        Rows accepted but not yet on disk, at most; beyond it :meth:`write` refuses.

    Records are dicts with the schema's fields. ``ts`` may be omitted (the time of ``write``),
    a datetime (naive means UTC) or epoch seconds. ``prediction`` and ``label`` are values,
    written as JSON text by the log; ``inputs`` is a mapping of column to value (or JSON text);
    numpy values are accepted everywhere. A record that cannot be converted is counted in
    :attr:`rejected` and logged by field name only (inputs may hold personal data).

    >>> log = PredictionLog("/tmp/log", flush_seconds=0.5).start()   # doctest: +SKIP
    >>> log.write(records)                                           # doctest: +SKIP
    True
    """

    def __init__(self, folder: str | os.PathLike[str], *, kind: str = "predictions",
                 flush_rows: int = 5000, flush_seconds: float = 1.0,
                 queue_rows: int = 200_000) -> None:
        self.folder = folder
        self.kind = kind
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.queue_rows = queue_rows
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[_Batch] = deque()
        self._pending_rows = 0
        self._inflight_rows = 0
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._segments = 0
        self._lost = 0
        self._closing = False
        self._give_up_at = math.inf
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    # -- counters (read without the lock: ints are replaced whole, a stale value is fine)

    @property
    def written(self) -> int:
        """Rows durably written to segments."""
        return self._written

    @property
    def dropped(self) -> int:
        """Rows refused by :meth:`write` (queue full, log closed) or abandoned by :meth:`close`."""
        return self._dropped

    @property
    def queued(self) -> int:
        """Rows accepted but not yet durably written."""
        return self._pending_rows + self._inflight_rows

    @property
    def rejected(self) -> int:
        """Records that could not be converted to the schema (missing field, wrong type)."""
        return self._rejected

    @property
    def segments(self) -> int:
        """Segments written by this log."""
        return self._segments

    @property
    def last_error(self) -> str | None:
        """The last failure to write a segment (it is retried), or None."""
        return self._last_error

    # -- lifecycle

    def start(self) -> PredictionLog:
        """Check the settings, open the folder, start the writer thread; return self."""
        if self._thread is not None:
            return self
        if self.kind not in KINDS:
            raise InvalidInput(f"prediction log kind {self.kind!r} is not one of "
                               f"{', '.join(KINDS)}")
        for name in ("flush_rows", "queue_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(f"prediction log {name} must be a whole number >= 1, "
                                   f"got {value!r}")
        if not (isinstance(self.flush_seconds, (int, float)) and self.flush_seconds > 0):
            raise InvalidInput(f"prediction log flush_seconds must be a number > 0, "
                               f"got {self.flush_seconds!r}")
        self._sink = sink_for(self.folder, self.kind)
        self._sink.open()
        # Import now what the first flush needs (pyarrow.parquet; pa.array imports pandas):
        # ~0.5 s of imports in the writer thread would hold the GIL while serving.
        import pyarrow.parquet  # noqa: F401

        _rows_table([], KINDS[self.kind])
        self._thread = threading.Thread(target=self._run, name=f"loopml-{self.kind}-log",
                                        daemon=True)
        self._thread.start()
        return self

    def write(self, records: list[Record]) -> bool:
        """Queue ``records`` for the writer and return True, or return False if the queue is full.

        Never blocks on the disk: it only takes a lock that the writer holds for a few
        list operations. Refused rows are counted in :attr:`dropped`.
        """
        n = len(records)
        if n == 0:
            return True
        batch = _Batch(list(records), time.monotonic(), time.time_ns() // 1000)
        with self._cond:
            if self._closing or self.queued + n > self.queue_rows:
                self._dropped += n
                return False
            first = self._pending_rows == 0
            self._pending.append(batch)
            self._pending_rows += n
            # The writer sleeps until the oldest batch's deadline; wake it only when that
            # deadline is new or the size threshold is reached.
            if first or self._pending_rows >= self.flush_rows:
                self._cond.notify()
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush what is queued, stop the writer; return True if every accepted row was written.

        Rows still unwritten after ``timeout`` seconds (the folder failing) are counted in
        :attr:`dropped` and the thread is left to end on its own.
        """
        with self._cond:
            self._closing = True
            self._give_up_at = time.monotonic() + timeout
            self._cond.notify()
        if self._thread is None:  # never started: nothing can write what was queued
            with self._cond:
                self._abandon(0)
        else:
            self._thread.join(timeout + 1.0)
        return self._lost == 0 and self.queued == 0 and not (
            self._thread is not None and self._thread.is_alive())

    # -- the writer thread

    def _take(self) -> list[_Batch] | None:
        """Wait for the next segment's batches (None: closed and empty)."""
        with self._cond:
            while True:
                if self._pending and (self._closing or self._pending_rows >= self.flush_rows):
                    break
                if not self._pending:
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                wait = self._pending[0].at + self.flush_seconds - time.monotonic()
                if wait <= 0:
                    break
                self._cond.wait(wait)
            batches, rows = [], 0
            while self._pending and rows < self.flush_rows:
                batch = self._pending.popleft()
                batches.append(batch)
                rows += len(batch.records)
            self._pending_rows -= rows
            self._inflight_rows += rows
            return batches

    def _run(self) -> None:
        failures = 0
        while (batches := self._take()) is not None:
            rows = sum(len(b.records) for b in batches)
            try:
                table = self._table(batches)
            except Exception:  # a bug here must not stop the log: count the rows rejected
                log.exception("prediction log: %d %s records could not be converted", rows,
                              self.kind)
                table = KINDS[self.kind].empty_table()
            while True:
                try:
                    if table.num_rows:
                        self._write_segment(table)
                except Exception as exc:  # disk full, folder gone: keep the rows, retry
                    failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    if failures == 1 or failures % 100 == 0:
                        log.error("prediction log %s: cannot write a segment (%s failures, "
                                  "retrying): %s", self._sink.where, failures, self._last_error)
                    with self._cond:
                        if self._closing and time.monotonic() >= self._give_up_at:
                            self._abandon(rows)
                            return
                        self._cond.wait(min(0.05 * 2 ** min(failures, 7), 5.0))
                    continue
                failures, self._last_error = 0, None
                with self._cond:
                    self._inflight_rows -= rows
                    self._written += table.num_rows
                    self._rejected += rows - table.num_rows
                    self._segments += 1 if table.num_rows else 0
                break

    def _abandon(self, inflight: int) -> None:
        """Count what is still queued as dropped (called with the lock held, when giving up)."""
        lost = inflight + self._pending_rows
        if not lost:
            return
        self._dropped += lost
        self._lost += lost
        self._inflight_rows -= inflight
        self._pending.clear()
        self._pending_rows = 0
        log.error("prediction log %s: closed with %d rows unwritten", self.folder, lost)

    def _table(self, batches: list[_Batch]) -> pa.Table:
        """Return the batches' records as one table; unconvertible records are left out."""
        schema = KINDS[self.kind]
        make = ROW_MAKERS[self.kind]
        rows = []
        for batch in batches:
            for record in batch.records:
                try:
                    rows.append(make(record, batch.ts_us))
                except Exception as exc:  # whatever is wrong with one record costs it alone
                    # the field's name only: a value may be personal data
                    what = (f"missing field {exc}" if isinstance(exc, KeyError)
                            else type(exc).__name__)
                    log.warning("prediction log: a %s record left out (%s)", self.kind, what)
        try:
            return _rows_table(rows, schema)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            # one bad value (an int beyond 64 bits) must not cost the whole segment
            good = []
            for row in rows:
                try:
                    _rows_table([row], schema)
                except (pa.ArrowException, ValueError, TypeError, OverflowError):
                    log.warning("prediction log: a %s record left out (a value out of range)",
                                self.kind)
                    continue
                good.append(row)
            return _rows_table(good, schema)

    def _write_segment(self, table: pa.Table) -> str:
        """Publish ``table`` as one segment; return where. (Tests stall the writer here.)"""
        return self._sink.publish(table)


def _rows_table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema)


