"""The prediction log: every served row (and every feedback label) as Parquet segments.

The server hands records to :meth:`PredictionLog.write`, which only appends them to a bounded
in-memory queue and returns at once (``False`` when the queue is full: the server answers 503
rather than wait). One background thread turns what is queued into a Parquet *segment* every
``flush_rows`` rows or ``flush_seconds`` seconds, whichever comes first, so segments are bounded
by size and by time. Monitoring reads the segments back with :func:`read_log`,
:func:`iter_segments` or, keeping a cursor, :func:`segments_after`.

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

import contextlib
import json
import logging
import math
import numbers
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from loopml.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

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

log = logging.getLogger(__name__)

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


_ROW_MAKERS = {"predictions": _prediction_row, "feedback": _feedback_row}


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
        self._sink = _sink_for(self.folder, self.kind)
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
        make = _ROW_MAKERS[self.kind]
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


# ---------------------------------------------------------------------------------- sinks


def _day(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


class _Namer:
    """Segment names that sort by time and never collide, even across hosts."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.token = secrets.token_hex(3)
        self.seq = 0
        self.last_ms = 0

    def next(self) -> tuple[int, str]:
        # never backwards, even if the clock is set back: names are the monitor's cursor
        ms = max(time.time_ns() // 1_000_000, self.last_ms)
        self.last_ms = ms
        self.seq += 1
        return ms, f"{ms:013d}-{self.pid}-{self.token}-{self.seq:06d}.parquet"


def _parquet_bytes(table: pa.Table) -> pa.Buffer:
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class _LocalSink:
    """Segments in a local folder: temp file, fsync, rename, fsync the folder."""

    def __init__(self, root: Path, kind: str) -> None:
        self.base = root / kind
        self.where = str(self.base)
        self._names = _Namer()
        self._known: set[Path] = set()

    def open(self) -> None:
        try:
            self._ensure(self.base)
        except OSError as exc:
            raise InvalidInput(f"prediction log folder {self.base}: cannot create it "
                               f"({exc.strerror}); give a writable folder") from exc
        self._remove_leftovers()

    def _ensure(self, folder: Path) -> None:
        """Create ``folder`` (and parents) durably: each new entry's parent is fsynced."""
        if folder in self._known:
            return
        missing = []
        current = folder
        while not current.exists():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            _fsync_dir(path.parent)
        self._known.add(folder)

    def _remove_leftovers(self) -> None:
        """Delete temp files of killed writers in the last two day folders (unlocked ones)."""
        from loopml.artifacts.backends import is_locked

        today = datetime.now(UTC)
        for day in {_day(int(today.timestamp() * 1000)),
                    _day(int((today - timedelta(days=1)).timestamp() * 1000))}:
            folder = self.base / day
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.endswith(_TMP_SUFFIX) and not is_locked(path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    def publish(self, table: pa.Table) -> str:
        try:
            return self._publish(table)
        except OSError:
            self._known.clear()  # a folder removed under us is made again on the retry
            raise

    def _publish(self, table: pa.Table) -> str:
        import pyarrow.parquet as pq

        from loopml.artifacts.backends import lock_file

        names = self._names
        tmp_dir = self.base / _day(time.time_ns() // 1_000_000)
        self._ensure(tmp_dir)
        tmp = tmp_dir / f".{names.pid}-{names.token}-{names.seq + 1:06d}{_TMP_SUFFIX}"
        with tmp.open("wb") as f:
            # locked while written: a starting writer removes only unlocked (dead) temp files
            lock_file(f.fileno())
            try:
                pq.write_table(table, f, compression="zstd")
                f.flush()
                os.fsync(f.fileno())
                # the name is taken only now, so a segment becomes visible within
                # microseconds of its timestamp (see segments_after's settle_seconds)
                ms, name = names.next()
                final_dir = self.base / _day(ms)
                self._ensure(final_dir)
                os.replace(tmp, final_dir / name)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
        # The segment is published: a failure from here on must not make the writer retry
        # (the rows would be written twice), so it is only logged.
        try:
            _fsync_dir(final_dir)
            if final_dir != tmp_dir:
                _fsync_dir(tmp_dir)
        except OSError as exc:
            log.warning("prediction log %s: cannot fsync %s (%s)", self.where, final_dir, exc)
        return str(final_dir / name)


class _FsspecSink:
    """Segments on an fsspec filesystem, each published by one ``pipe`` (one PUT)."""

    def __init__(self, fs: AbstractFileSystem, base: str, kind: str, url: str) -> None:
        self.fs = fs
        self.base = f"{base.rstrip('/')}/{kind}"
        self.where = f"{url.rstrip('/')}/{kind}"
        self._names = _Namer()
        self._retry: tuple[pa.Table, int, str] | None = None

    def open(self) -> None:
        try:
            self.fs.makedirs(self.base, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"prediction log folder {self.where}: cannot create it ({exc}); "
                               "give a writable location") from exc

    def publish(self, table: pa.Table) -> str:
        data = _parquet_bytes(table)
        # A retry of the same table keeps its name: a PUT that landed but answered an
        # error is then overwritten, not written twice under a second name.
        if self._retry is not None and self._retry[0] is table:
            _, ms, name = self._retry
        else:
            ms, name = self._names.next()
            self._retry = (table, ms, name)
        folder = f"{self.base}/{_day(ms)}"
        self.fs.makedirs(folder, exist_ok=True)
        self.fs.pipe_file(f"{folder}/{name}", data.to_pybytes())
        self._retry = None
        return f"{folder}/{name}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split(folder: str | os.PathLike[str]) -> tuple[AbstractFileSystem | None, str]:
    """Return (None, local path) or (fsspec filesystem, path in it) for a log folder."""
    text = os.fspath(folder)
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"prediction log folder {folder!r} must be a path or a URL")
    if text.startswith("file://"):
        return None, text.removeprefix("file://")
    if "://" not in text:
        return None, text
    import fsspec

    try:
        fs, base = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise InvalidInput(f"prediction log folder {text!r}: {exc} (install the fsspec driver "
                           "for this scheme, e.g. pip install s3fs)") from exc
    return fs, base


def _sink_for(folder: str | os.PathLike[str], kind: str) -> _LocalSink | _FsspecSink:
    fs, base = _split(folder)
    if fs is None:
        return _LocalSink(Path(base).expanduser().absolute(), kind)
    return _FsspecSink(fs, base, kind, os.fspath(folder))


# ---------------------------------------------------------------------------------- readers


@dataclass(frozen=True, order=True)
class Segment:
    """One published segment: ``name`` (the cursor, sorts by time) and where it lives."""

    name: str
    path: str

    @property
    def epoch_ms(self) -> int:
        """When the segment was published (UTC epoch milliseconds)."""
        return int(self.name[:13])


# (path, why it was skipped)
Skipped = list[tuple[str, str]]


def _bound_us(when: datetime | float | None, what: str) -> int | None:
    """Return a reader's time bound as epoch microseconds (None stays None)."""
    if when is None:
        return None
    try:
        return _micros(when)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{what} must be a datetime or epoch seconds, got {when!r}") from exc


def _kind_schema(kind: str) -> pa.Schema:
    if kind not in KINDS:
        raise InvalidInput(f"prediction log kind {kind!r} is not one of {', '.join(KINDS)}")
    return KINDS[kind]


def list_segments(folder: str | os.PathLike[str], *, kind: str = "predictions",
                  since: datetime | float | None = None, after: str | None = None,
                  settle_seconds: float = 0.0, skipped: Skipped | None = None) -> list[Segment]:
    """Return the segments of ``kind`` in time order, without reading them.

    ``since`` leaves out segments published before it (they can hold no record logged
    since); ``after`` leaves out segments named up to that cursor; ``settle_seconds``
    leaves out segments younger than that. Files that are not segments (a leftover
    ``.tmp``, a foreign file) are appended to ``skipped`` as ``(path, reason)``.
    """
    _kind_schema(kind)
    fs, base = _split(folder)
    root = f"{base.rstrip('/')}/{kind}"
    since_us = _bound_us(since, "since")
    since_ms = None if since_us is None else since_us // 1000
    newest_ms = (time.time_ns() // 1_000_000 - round(settle_seconds * 1000)
                 if settle_seconds > 0 else None)
    first_day = None if since_ms is None else _day_clamped(since_ms)
    if after is not None and _SEGMENT.match(after):
        after_day = _day(int(after[:13]))
        first_day = after_day if first_day is None else max(first_day, after_day)
    found: list[Segment] = []
    for day, entries in _days(fs, root):
        if first_day is not None and day < first_day:
            continue
        for name, path in entries:
            match = _SEGMENT.match(name)
            if match is None:
                if skipped is not None:
                    reason = ("temporary file (a write in progress or left by a killed writer)"
                              if name.endswith(".tmp") else "not a segment name")
                    skipped.append((path, reason))
                continue
            ms = int(match.group(1))
            if ((since_ms is not None and ms < since_ms) or (after is not None and name <= after)
                    or (newest_ms is not None and ms > newest_ms)):
                continue
            found.append(Segment(name, path))
    found.sort()
    return found


def _day_clamped(epoch_ms: int) -> str:
    """Return the UTC day of ``epoch_ms``, or the first/last day a datetime can hold."""
    try:
        return _day(epoch_ms)
    except (OverflowError, ValueError, OSError):
        return "9999-12-31" if epoch_ms > 0 else "0001-01-01"


def _days(fs: AbstractFileSystem | None, root: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Yield (day, [(file name, path)]) for the day folders under ``root``, oldest first."""
    if fs is None:
        base = Path(root).expanduser()
        if not base.is_dir():
            return
        for day in sorted(p.name for p in base.iterdir() if _DAY.match(p.name)):
            folder = base / day
            if folder.is_dir():
                with os.scandir(folder) as entries:  # file types without a stat per file
                    yield day, [(e.name, e.path) for e in entries if e.is_file()]
        return
    if not fs.isdir(root):
        return
    for entry in sorted(fs.ls(root, detail=False)):
        day = entry.rstrip("/").rsplit("/", 1)[-1]
        if _DAY.match(day) and fs.isdir(entry):
            files = fs.ls(entry, detail=True)
            yield day, [(f["name"].rsplit("/", 1)[-1], f["name"]) for f in files
                        if f.get("type") == "file"]


def read_segment(segment: Segment | str, *, kind: str = "predictions",
                 filesystem: AbstractFileSystem | None = None) -> pa.Table:
    """Return one segment's records with the schema of ``kind``.

    Raises :class:`TornSegment` if the file is truncated, garbage, or lacks the schema's
    columns. ``filesystem`` is the fsspec filesystem of the path (None: local).
    """
    import pyarrow.parquet as pq

    schema = _kind_schema(kind)
    path = segment.path if isinstance(segment, Segment) else os.fspath(segment)
    try:
        with (filesystem.open(path, "rb") if filesystem is not None
              else open(path, "rb")) as f:
            parquet = pq.ParquetFile(f)
            missing = [n for n in schema.names if n not in parquet.schema_arrow.names]
            if missing:
                raise TornSegment(f"prediction log segment {path} is not a {kind} segment: "
                                  f"no column {', '.join(missing)}")
            table = parquet.read(columns=schema.names)
        return table.cast(schema)
    except TornSegment:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise TornSegment(f"prediction log segment {path} cannot be read ({exc}); it is "
                          "skipped (a torn or foreign file)") from exc


def iter_segments(folder: str | os.PathLike[str], *, kind: str = "predictions",
                  since: datetime | float | None = None, until: datetime | float | None = None,
                  after: str | None = None, settle_seconds: float = 0.0,
                  skipped: Skipped | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield ``(path, table)`` per segment in time order, one segment in memory at a time.

    Rows are those with ``since <= ts < until`` (either bound optional); segments left with
    no rows are not yielded. A segment that cannot be read is logged as a warning, appended
    to ``skipped`` and passed over. See :func:`list_segments` for ``after`` and
    ``settle_seconds``.
    """
    import pyarrow.compute as pc

    fs, _ = _split(folder)
    since_us = _bound_us(since, "since")
    until_us = _bound_us(until, "until")
    for segment in list_segments(folder, kind=kind, since=since, after=after,
                                 settle_seconds=settle_seconds, skipped=skipped):
        try:
            table = read_segment(segment, kind=kind, filesystem=fs)
        except TornSegment as exc:
            log.warning("%s", exc)
            if skipped is not None:
                skipped.append((segment.path, str(exc)))
            continue
        if since_us is not None or until_us is not None:
            ts = table.column("ts").cast(pa.int64())
            keep = None
            if since_us is not None:
                keep = pc.greater_equal(ts, since_us)
            if until_us is not None:
                upper = pc.less(ts, until_us)
                keep = upper if keep is None else pc.and_(keep, upper)
            table = table.filter(keep)
        if table.num_rows:
            yield segment.path, table


def read_log(folder: str | os.PathLike[str], *, kind: str = "predictions",
             since: datetime | float | None = None, until: datetime | float | None = None,
             skipped: Skipped | None = None) -> pa.Table:
    """Return every record of ``kind`` with ``since <= ts < until``, in segment order.

    An empty or missing log gives an empty table with the schema of ``kind``.
    """
    schema = _kind_schema(kind)
    tables = [t for _, t in iter_segments(folder, kind=kind, since=since, until=until,
                                          skipped=skipped)]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def segments_after(folder: str | os.PathLike[str], cursor: str | None, *,
                   kind: str = "predictions", settle_seconds: float = 5.0) -> list[Segment]:
    """Return the segments published after ``cursor`` (a segment name; None: all), oldest first.

    A monitor keeps the last name it read as its cursor. Segments younger than
    ``settle_seconds`` are left for the next call: a segment is renamed into place
    microseconds after its name (its timestamp) is taken, but with several servers sharing
    a folder one may publish a slightly older name after another's newer one; waiting a
    few seconds keeps the cursor from skipping it.

    >>> segments_after("/tmp/log", None)                     # doctest: +SKIP
    [Segment(name='1764480000000-4242-a1b2c3-000001.parquet', path='/tmp/log/...')]
    """
    return list_segments(folder, kind=kind, after=cursor, settle_seconds=settle_seconds)
