"""The metadata store: runs, params, metrics, tags and artifact records in SQLite or PostgreSQL.

Public surface: :class:`Store` and the record types. Nothing outside this package writes SQL.
"""

from __future__ import annotations

from loopml.store.database import Store
from loopml.store.records import ArtifactRecord, MetricPoint, RunDetail, RunRecord

__all__ = ["ArtifactRecord", "MetricPoint", "RunDetail", "RunRecord", "Store"]
