"""Monitoring records: windows (sketch + verdict), cursors, references and alerts.

A monitor pass writes in two steps, each one transaction:

1. :meth:`Monitoring.save_sketches`: the windows its new segments touched (merged sketches,
   marked dirty) together with the cursor, moved by compare-and-set from the position the
   pass started at, so a segment is counted once even when two monitors race or one is
   killed mid-pass;
2. :meth:`Monitoring.save_results`: the verdicts of dirty windows and their new alerts (one
   alert per window and kind, however many passes see it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import ConflictError
from loopml.store.schema import Alert, MonitorCursor, MonitorReference, MonitorWindow, utcnow
from loopml.store.upsert import insert_ignore

if TYPE_CHECKING:
    from loopml.store import Store


@dataclass
class WindowRecord:
    """One stored window; ``sketch`` and ``result`` are parsed JSON."""

    model: str
    version: int
    window: str
    start_key: int
    rows: int
    sketch: dict[str, Any]
    segments: list[str] = field(default_factory=list)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    result: dict[str, Any] | None = None
    dirty: bool = True
    updated_at: datetime | None = None

    @property
    def key(self) -> tuple[int, int]:
        """``(version, start_key)``: the window's identity within one monitor."""
        return self.version, self.start_key


@dataclass(frozen=True)
class CursorRecord:
    name: str
    predictions: str | None = None
    feedback: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    passes: int = 0
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AlertRecord:
    id: int
    model: str
    version: int
    window: str
    start_key: int
    kind: str
    severity: str
    message: str
    details: dict[str, Any]
    created_at: datetime
    webhook: str | None


def _window(row: Any) -> WindowRecord:
    return WindowRecord(model=row.model, version=row.version, window=row.window,
                        start_key=row.start_key, rows=row.rows, sketch=json.loads(row.sketch),
                        segments=json.loads(row.segments), first_ts=row.first_ts,
                        last_ts=row.last_ts,
                        result=None if row.result is None else json.loads(row.result),
                        dirty=bool(row.dirty), updated_at=row.updated_at)


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(id=row.id, model=row.model, version=row.version, window=row.window,
                       start_key=row.start_key, kind=row.kind, severity=row.severity,
                       message=row.message, details=json.loads(row.details),
                       created_at=row.created_at, webhook=row.webhook)


def _dump(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


class Monitoring:
    """Read and write the monitoring tables of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- cursors ---------------------------------------------------------------------------

    def cursor(self, name: str) -> CursorRecord:
        """Return the cursor ``name``; a fresh one (nothing read yet) if it does not exist."""
        from sqlalchemy import select

        with self._store.read() as conn:
            row = conn.execute(select(MonitorCursor).where(MonitorCursor.name == name)
                               ).one_or_none()
            if row is None:
                return CursorRecord(name)
            return CursorRecord(name=row.name, predictions=row.predictions,
                                feedback=row.feedback, state=json.loads(row.state),
                                passes=row.passes, updated_at=row.updated_at)

    # -- windows ---------------------------------------------------------------------------

    def windows(self, model: str, window: str, *, keys: list[tuple[int, int]] | None = None,
                since_key: int | None = None, dirty_only: bool = False) -> list[WindowRecord]:
        """Return the stored windows of a monitor, oldest first (optionally only ``keys``)."""
        from sqlalchemy import and_, or_, select

        query = select(MonitorWindow).where(MonitorWindow.model == model,
                                            MonitorWindow.window == window)
        if since_key is not None:
            query = query.where(MonitorWindow.start_key >= since_key)
        if dirty_only:
            query = query.where(MonitorWindow.dirty == 1)
        found: list[WindowRecord] = []
        with self._store.read() as conn:
            if keys is not None:
                for start in range(0, len(keys), 200):  # bounded IN lists
                    chunk = keys[start:start + 200]
                    clause = or_(*(and_(MonitorWindow.version == v, MonitorWindow.start_key == k)
                                   for v, k in chunk))
                    found += [_window(r) for r in conn.execute(query.where(clause))]
            else:
                found = [_window(r) for r in conn.execute(query)]
        found.sort(key=lambda w: (w.start_key, w.version))
        return found

    def keys_since(self, model: str, window: str, since: datetime | None
                   ) -> list[tuple[int, int]]:
        """Return ``(version, start_key)`` of windows whose last row is at ``since`` or later.

        Reads no sketch: this is how a pass picks the windows new labels may reach.
        """
        from sqlalchemy import or_, select

        query = select(MonitorWindow.version, MonitorWindow.start_key).where(
            MonitorWindow.model == model, MonitorWindow.window == window)
        if since is not None:
            query = query.where(or_(MonitorWindow.last_ts.is_(None),
                                    MonitorWindow.last_ts >= since))
        with self._store.read() as conn:
            return [(row.version, row.start_key) for row in conn.execute(query)]

    def save_sketches(self, cursor: CursorRecord, moved: CursorRecord,
                      windows: list[WindowRecord]) -> None:
        """Store ``windows`` (marked dirty) and move the cursor from ``cursor`` to ``moved``.

        One transaction; raises :class:`ConflictError` (and writes nothing) when the stored
        cursor is no longer ``cursor``: another monitor read those segments first.
        """
        from sqlalchemy import update

        from loopml.store.upsert import upsert

        now = utcnow()
        with self._store.write() as conn:
            if cursor.passes == 0 and cursor.updated_at is None:
                insert_ignore(conn, MonitorCursor.__table__, [{
                    "name": cursor.name, "predictions": None, "feedback": None,
                    "state": "{}", "passes": 0, "updated_at": now}])
            changed = conn.execute(
                update(MonitorCursor).where(
                    MonitorCursor.name == cursor.name,
                    _same(MonitorCursor.predictions, cursor.predictions),
                    _same(MonitorCursor.feedback, cursor.feedback),
                    MonitorCursor.passes == cursor.passes)
                .values(predictions=moved.predictions, feedback=moved.feedback,
                        state=_dump(moved.state), passes=cursor.passes + 1, updated_at=now)
            ).rowcount
            if changed != 1:
                raise ConflictError(
                    f"monitor {cursor.name!r} was moved on by another pass meanwhile; nothing "
                    "was written twice, run it again")
            if windows:
                upsert(conn, MonitorWindow.__table__, [{
                    "model": w.model, "version": w.version, "window": w.window,
                    "start_key": w.start_key, "first_ts": w.first_ts, "last_ts": w.last_ts,
                    "rows": w.rows, "sketch": _dump(w.sketch), "segments": _dump(w.segments),
                    "result": None if w.result is None else _dump(w.result), "dirty": 1,
                    "updated_at": now} for w in windows],
                    key=["model", "version", "window", "start_key"],
                    update=["first_ts", "last_ts", "rows", "sketch", "segments", "dirty",
                            "updated_at"])

    def mark_dirty(self, model: str, window: str, keys: list[tuple[int, int]]) -> None:
        """Mark windows whose labels changed, so their verdict is recomputed."""
        from sqlalchemy import and_, or_, update

        with self._store.write() as conn:
            for start in range(0, len(keys), 200):
                chunk = keys[start:start + 200]
                conn.execute(update(MonitorWindow).where(
                    MonitorWindow.model == model, MonitorWindow.window == window,
                    or_(*(and_(MonitorWindow.version == v, MonitorWindow.start_key == k)
                          for v, k in chunk))).values(dirty=1))

    def save_results(self, model: str, window: str,
                     results: list[tuple[tuple[int, int], dict[str, Any]]],
                     alerts: list[dict[str, Any]]) -> list[AlertRecord]:
        """Store window verdicts and their alerts in one transaction; return the new alerts.

        ``alerts`` are dicts with version, start_key, kind, severity, message, details; an
        alert already raised for the same window and kind is kept as it was.
        """
        from sqlalchemy import select, update

        from loopml.store.upsert import _dialect_insert

        now = utcnow()
        with self._store.write() as conn:
            for (version, start_key), result in results:
                conn.execute(update(MonitorWindow).where(
                    MonitorWindow.model == model, MonitorWindow.window == window,
                    MonitorWindow.version == version, MonitorWindow.start_key == start_key)
                    .values(result=_dump(result), dirty=0, updated_at=now))
            new: list[AlertRecord] = []
            for alert in alerts:
                # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT inserts
                inserted = conn.execute(_dialect_insert(conn, Alert.__table__)
                                        .on_conflict_do_nothing().returning(Alert.id), {
                    "model": model, "version": alert["version"], "window": window,
                    "start_key": alert["start_key"], "kind": alert["kind"],
                    "severity": alert["severity"], "message": alert["message"],
                    "details": _dump(alert.get("details", {})), "created_at": now,
                    "webhook": None}).first()
                if inserted is not None:  # not raised by an earlier pass (or a racing one)
                    new.append(_alert(conn.execute(select(Alert).where(
                        Alert.id == inserted[0])).one()))
        return new

    def reset(self, model: str, window: str, *, cursor: str) -> int:
        """Forget a monitor's windows and cursor (alerts stay); return the windows dropped."""
        from sqlalchemy import delete

        with self._store.write() as conn:
            dropped = conn.execute(delete(MonitorWindow).where(
                MonitorWindow.model == model, MonitorWindow.window == window)).rowcount
            conn.execute(delete(MonitorCursor).where(MonitorCursor.name == cursor))
        return dropped

    # -- references ------------------------------------------------------------------------

    def reference(self, model: str, version: int) -> dict[str, Any] | None:
        """Return the stored reference of ``model@version``, or None."""
        from sqlalchemy import select

        with self._store.read() as conn:
            text = conn.execute(select(MonitorReference.reference).where(
                MonitorReference.model == model, MonitorReference.version == version)
            ).scalar_one_or_none()
        return None if text is None else json.loads(text)

    def save_reference(self, model: str, version: int, reference: dict[str, Any]
                       ) -> dict[str, Any]:
        """Store the reference of ``model@version`` unless one exists; return the stored one."""
        with self._store.write() as conn:
            insert_ignore(conn, MonitorReference.__table__, [{
                "model": model, "version": version, "reference": _dump(reference),
                "created_at": utcnow()}])
        stored = self.reference(model, version)
        assert stored is not None
        return stored

    # -- alerts ----------------------------------------------------------------------------

    def alerts(self, *, model: str | None = None, since: datetime | None = None,
               kinds: list[str] | None = None, limit: int | None = None,
               unsent: bool = False) -> list[AlertRecord]:
        """Return alerts, newest first, optionally of one model, since a time, of some kinds.

        ``unsent``: only those no webhook call was made for yet.
        """
        from sqlalchemy import select

        query = select(Alert).order_by(Alert.id.desc())
        if unsent:
            query = query.where(Alert.webhook.is_(None))
        if model is not None:
            query = query.where(Alert.model == model)
        if since is not None:
            query = query.where(Alert.created_at >= since)
        if kinds:
            query = query.where(Alert.kind.in_(kinds))
        if limit is not None:
            query = query.limit(limit)
        with self._store.read() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def set_webhook(self, alert_id: int, status: str) -> None:
        """Record how the webhook call for alert ``alert_id`` ended."""
        from sqlalchemy import update

        with self._store.write() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id)
                         .values(webhook=status[:250]))


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value
