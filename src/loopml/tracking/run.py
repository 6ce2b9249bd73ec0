"""An open run: the handle a training script logs through."""

from __future__ import annotations

import contextvars
import operator
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from loopml.errors import InvalidInput
from loopml.store.metrics import PointRow
from loopml.store.records import ArtifactRecord, RunRecord
from loopml.store.runs import check_key

if TYPE_CHECKING:
    from loopml.tracking.client import TrackingClient

_ERROR_LIMIT = 4000
_MAX_STEP = 2**63  # steps and timestamps are stored as 64-bit integers


class ActiveRun:
    """A RUNNING run. Use it as a context manager; it ends when the block does.

    A block that raises marks the run FAILED with the error, Ctrl-C marks it KILLED,
    a normal exit FINISHED. Metric points are buffered and are all in the store once
    :meth:`flush` or :meth:`end` returns.
    """

    def __init__(self, client: TrackingClient, record: RunRecord) -> None:
        self._client = client
        self.record = record
        self.id = record.id
        self._buffer = client.metric_buffer
        self._next_step: dict[str, int] = {}
        self._ended = False
        self._token: contextvars.Token[ActiveRun | None] | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self.record.name!r} {self.id[:12]} project={self.record.project!r}>"

    # -- logging ---------------------------------------------------------------------------
    def log_param(self, key: str, value: object) -> None:
        """Record one parameter (a value that does not change during the run)."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record several parameters in one write."""
        self._check_open()
        self._client.store.runs.log_params(self.id, params)

    def set_tag(self, key: str, value: object) -> None:
        """Set a tag (a label that may change, unlike a param)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set several tags in one write."""
        self._check_open()
        self._client.store.runs.set_tags(self.id, tags)

    def log_metric(
        self, key: str, value: float, *, step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Queue one metric point; ``step`` defaults to one past this key's last step."""
        self._buffer.add(self._point(key, value, step, timestamp_ms))

    def log_metrics(self, metrics: Mapping[str, float], *, step: int | None = None) -> None:
        """Queue one point for each key, all at the same step and time, in one buffer call."""
        now = time.time_ns() // 1_000_000
        self._buffer.extend([self._point(k, v, step, now) for k, v in metrics.items()])

    def _point(self, key: str, value: object, step: object, timestamp_ms: int | None
               ) -> PointRow:
        """Return the stored row of one point, after checking what the caller gave."""
        if self._ended:
            self._check_open()
        if key not in self._next_step:
            check_key(key, what="metric")
        if type(value) is not float:
            value = _as_float(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int or not 0 <= step < _MAX_STEP:  # type: ignore[operator]
            step = _as_step(key, step)
        self._next_step[key] = step + 1  # type: ignore[operator]
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms < _MAX_STEP:
            raise InvalidInput(f"timestamp_ms of metric {key!r} must be whole milliseconds "
                               f"since 1970, got {timestamp_ms!r}")
        return (
            self.id,
            key,
            step,  # type: ignore[return-value]
            None if value != value else value,  # NaN is stored as NULL
            timestamp_ms,
        )

    def log_artifact(self, obj: object, name: str | None = None) -> list[ArtifactRecord]:
        """Store a file, folder, bytes, DataFrame, figure or dict as named artifacts of this run."""
        self._check_open()
        return self._client.log_artifact(self.id, obj, name=name)

    def flush(self) -> None:
        """Write buffered metric points now; they are durable when this returns."""
        self._buffer.flush()

    # -- lifecycle -------------------------------------------------------------------------
    def end(self, status: str = "FINISHED", *, error: str | None = None) -> None:
        """Flush, then mark the run ``status`` (FINISHED, FAILED or KILLED). Idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            self._buffer.flush()
        finally:
            self._client.store.runs.finish(self.id, status=status, error=error)
            self._client.forget(self)

    @property
    def ended(self) -> bool:
        return self._ended

    def __enter__(self) -> ActiveRun:
        from loopml.tracking.context import _active_run

        self._token = _active_run.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        from loopml.tracking.context import _active_run

        if self._token is not None:
            _active_run.reset(self._token)
            self._token = None
        if exc is None:
            self.end("FINISHED")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("KILLED", error="interrupted (KeyboardInterrupt)")
        else:
            self.end("FAILED", error=f"{type(exc).__name__}: {exc}"[:_ERROR_LIMIT])

    def _check_open(self) -> None:
        if self._ended:
            raise InvalidInput(
                f"run {self.id[:12]} ({self.record.name!r}) has ended; start a new run to log more"
            )


def _as_float(key: str, value: object) -> float:
    if isinstance(value, bool | str | bytes):
        raise InvalidInput(f"metric {key!r} must be a number, got {type(value).__name__} "
                           f"{value!r}")
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(
            f"metric {key!r} must be a number, got {type(value).__name__} {value!r}"
        ) from None
    return result


def _as_step(key: str, step: object) -> int:
    try:
        if isinstance(step, bool):
            raise TypeError
        result = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInput(
            f"step of metric {key!r} must be a whole number, got {step!r}"
        ) from None
    if not 0 <= result < _MAX_STEP:
        raise InvalidInput(f"step of metric {key!r} must be between 0 and 2**63 - 1, got "
                           f"{result}")
    return result
