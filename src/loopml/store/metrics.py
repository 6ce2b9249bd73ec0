"""Metric points: written in batches, read as histories or as the latest value per key."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loopml.store.records import MetricPoint
from loopml.store.schema import LatestMetric, Metric
from loopml.store.upsert import upsert

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store.database import Store

# (run_id, key, step, value, timestamp_ms); value None stands for NaN.
PointRow = tuple[str, str, int, float | None, int]

_COLUMNS = "run_id, key, step, value, timestamp"


class Metrics:
    """Write and read metric points of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def write_batch(self, rows: Sequence[PointRow]) -> None:
        """Insert points and move each (run, key)'s latest value forward, in one transaction."""
        if not rows:
            return
        with self._store.write() as conn:
            marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            # The driver's executemany, not the ORM: this path carries every point logged.
            conn.exec_driver_sql(
                f"INSERT INTO metrics ({_COLUMNS}) VALUES ({', '.join([marker] * 5)})",
                list(rows),
            )
            upsert(
                conn,
                LatestMetric.__table__,
                _latest_of(rows),
                key=["run_id", "key"],
                update=["step", "value", "timestamp"],
                only_if=lambda table, new: new.step >= table.c.step,
            )

    def history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Return every point of ``key`` in run ``run_id``, by step then time."""
        from sqlalchemy import select

        query = (
            select(Metric.key, Metric.step, Metric.value, Metric.timestamp)
            .where(Metric.run_id == run_id, Metric.key == key)
            .order_by(Metric.step, Metric.timestamp, Metric.id)
        )
        with self._store.read() as conn:
            return [_point(*row) for row in conn.execute(query)]

    def count(self, run_id: str) -> int:
        """Return how many points run ``run_id`` has in the store."""
        from sqlalchemy import func, select

        with self._store.read() as conn:
            return conn.execute(
                select(func.count()).select_from(Metric).where(Metric.run_id == run_id)
            ).scalar_one()

    def latest(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricPoint]]:
        """Return {run id: {key: point with the highest step}} for the given runs."""
        with self._store.read() as conn:
            return latest_points(conn, run_ids)


def latest_points(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, MetricPoint]]:
    """Return the latest point of every key for each run, read in the caller's transaction."""
    from sqlalchemy import select

    out: dict[str, dict[str, MetricPoint]] = {}
    if not run_ids:
        return out
    query = select(
        LatestMetric.run_id, LatestMetric.key, LatestMetric.step, LatestMetric.value,
        LatestMetric.timestamp,
    ).where(LatestMetric.run_id.in_(list(run_ids))).order_by(LatestMetric.key)
    for run_id, key, step, value, ts in conn.execute(query):
        out.setdefault(run_id, {})[key] = _point(key, step, value, ts)
    return out


def _latest_of(rows: Sequence[PointRow]) -> list[dict[str, object]]:
    best: dict[tuple[str, str], PointRow] = {}
    for row in rows:
        current = best.get((row[0], row[1]))
        if current is None or row[2] >= current[2]:
            best[(row[0], row[1])] = row
    return [
        {"run_id": r, "key": k, "step": s, "value": v, "timestamp": t}
        for r, k, s, v, t in best.values()
    ]


def _point(key: str, step: int, value: float | None, timestamp: int) -> MetricPoint:
    return MetricPoint(key=key, step=step, value=math.nan if value is None else value,
                       timestamp_ms=timestamp)
