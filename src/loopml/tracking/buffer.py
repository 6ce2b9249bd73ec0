"""Metric points held in memory and written to the store in batches.

A training loop that logs every step calls :meth:`MetricBuffer.add`, which appends to
a list under a lock and returns; a background thread writes the list to the store when
it reaches ``batch_size`` points or every ``interval_s`` seconds. :meth:`flush` writes
everything now and returns once it is durable (run end, process exit). If the store is
briefly unavailable the points stay buffered and the next flush retries them; if the
buffer grows past ``max_pending`` the logging call itself flushes, so memory stays bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence

from loopml.errors import ConstraintError, StoreError
from loopml.store.metrics import PointRow

WriteBatch = Callable[[Sequence[PointRow]], None]

_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    """Buffered, batched writes of metric points through ``write_batch``."""

    def __init__(
        self,
        write_batch: WriteBatch,
        *,
        batch_size: int = 50_000,
        interval_s: float = 2.0,
        max_pending: int = 1_000_000,
    ) -> None:
        self._write_batch = write_batch
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_pending = max_pending
        self._rows: list[PointRow] = []
        self._lock = threading.Lock()  # guards _rows
        self._flush_lock = threading.Lock()  # one writer at a time, points stay in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: BaseException | None = None

    def add(self, row: PointRow) -> None:
        """Queue one point; cheap enough to call on every training step."""
        with self._lock:
            self._rows.append(row)
            pending = len(self._rows)
        if self._thread is None:
            self._start()
        if pending >= self.batch_size:
            self._wake.set()
            if pending >= self.max_pending:
                self.flush()  # the writer fell behind: make the logger wait

    def extend(self, rows: Sequence[PointRow]) -> None:
        """Queue many points at once."""
        with self._lock:
            self._rows.extend(rows)
            pending = len(self._rows)
        if self._thread is None:
            self._start()
        if pending >= self.batch_size:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._rows)

    def flush(self) -> int:
        """Write every queued point now; return how many were written.

        Raises StoreError, keeping the points queued, if the store refuses them.
        """
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            done, chunk = 0, self.batch_size * 2
            try:
                while done < len(rows):
                    self._write_chunk(rows[done:done + chunk])
                    done = min(done + chunk, len(rows))
            except BaseException as exc:
                with self._lock:
                    self._rows[:0] = rows[done:]  # keep them, in order, for the next try
                self.last_error = exc
                if isinstance(exc, Exception) and not isinstance(exc, StoreError):
                    raise StoreError(
                        f"could not write {len(rows) - done} metric points: {exc}"
                    ) from exc
                raise
            self.last_error = None
            return len(rows)

    def _write_chunk(self, rows: Sequence[PointRow]) -> None:
        """Write rows; if a constraint fails, write run by run and drop the runs that fail.

        A run deleted while its points were buffered would otherwise block every later
        flush of every run. The dropped points are reported in ``last_error``.
        """
        try:
            self._write_batch(rows)
            return
        except ConstraintError:
            pass
        by_run: dict[str, list[PointRow]] = {}
        for row in rows:
            by_run.setdefault(row[0], []).append(row)
        for run_id, points in by_run.items():
            try:
                self._write_batch(points)
            except ConstraintError as exc:
                self.last_error = exc
                warnings.warn(f"dropped {len(points)} metric points of run {run_id[:12]}: "
                              f"{exc}", RuntimeWarning, stacklevel=2)

    def close(self) -> None:
        """Stop the background writer and flush what is left."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="loopml-metric-writer", daemon=True
            )
            _live.add(self)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            # A failure is kept in last_error and retried; flush() at run end raises it.
            with contextlib.suppress(Exception):
                self.flush()


@atexit.register
def _flush_all_at_exit() -> None:
    for buffer in list(_live):
        with contextlib.suppress(Exception):  # nothing can be reported at interpreter exit
            buffer.close()
