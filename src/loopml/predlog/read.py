"""Reading the prediction log: segments in time order, torn or foreign files skipped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

from loopml.predlog.format import _DAY, _SEGMENT, KINDS, TornSegment, _micros, log
from loopml.predlog.sinks import _day, split_location

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
    fs, base = split_location(folder)
    root = f"{base.rstrip('/')}/{kind}"
    since_us = _bound_us(since, "since")
    since_ms = None if since_us is None else since_us // 1000
    newest_ms = (time.time_ns() // 1_000_000 - round(settle_seconds * 1000)
                 if settle_seconds > 0 else None)
    first_day = None if since_ms is None else day_of(since_ms)
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


def day_of(epoch_ms: int) -> str:
    """Return the UTC day of ``epoch_ms``, or the first/last day a datetime can hold.

    >>> day_of(1764480000000), day_of(10**20)
    ('2025-11-30', '9999-12-31')
    """
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

    fs, _ = split_location(folder)
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
