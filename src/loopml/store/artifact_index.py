"""The metadata side of artifacts: which run has which named file, stored under which sha256."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from loopml.errors import InvalidInput, NotFound
from loopml.store.records import ArtifactRecord
from loopml.store.schema import Artifact, utcnow
from loopml.store.upsert import upsert

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store.database import Store

MAX_NAME = 1024


def check_artifact_name(name: object) -> str:
    """Return a usable artifact name: relative, '/'-separated, no empty, '.' or '..' parts.

    The name is only ever a label in the database; it never becomes a filesystem path.

    >>> check_artifact_name("plots/roc.png")
    'plots/roc.png'
    """
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"artifact name {name!r} must be a non-empty string")
    parts = name.split("/")
    if (len(name) > MAX_NAME or name.startswith("/") or "\\" in name or "\x00" in name
            or any(part in ("", ".", "..") for part in parts)):
        raise InvalidInput(
            f"artifact name {name[:80]!r} is not allowed: use a relative name like "
            "'model.pkl' or 'plots/roc.png' (no leading '/', no '..', no backslashes)"
        )
    return name


class ArtifactRow(NamedTuple):
    """One named file to record: its name and the stored bytes it points at."""

    name: str
    sha256: str
    size: int
    media_type: str


class ArtifactIndex:
    """Record and look up the named artifacts of runs."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, run_id: str, *, name: str, sha256: str, size: int,
               media_type: str) -> ArtifactRecord:
        """Point ``run_id``'s artifact ``name`` at stored bytes (replacing an earlier one)."""
        return self.record_many(run_id, [ArtifactRow(name, sha256, size, media_type)])[0]

    def record_many(self, run_id: str, rows: Sequence[ArtifactRow]) -> list[ArtifactRecord]:
        """Record several named artifacts of ``run_id`` in one transaction: all or none."""
        for row in rows:
            check_artifact_name(row.name)
        now = utcnow()
        values = [{"run_id": run_id, "name": r.name, "sha256": r.sha256, "size": r.size,
                   "media_type": r.media_type, "created_at": now} for r in rows]
        if values:
            with self._store.write() as conn:
                upsert(conn, Artifact.__table__, values, key=["run_id", "name"],
                       update=["sha256", "size", "media_type", "created_at"])
        return [ArtifactRecord(run_id=run_id, name=r.name, sha256=r.sha256, size=r.size,
                               media_type=r.media_type, created_at=now) for r in rows]

    def list(self, run_id: str) -> list[ArtifactRecord]:
        """Return a run's artifacts by name."""
        with self._store.read() as conn:
            return artifact_records(conn, run_id)

    def get(self, run_id: str, name: str) -> ArtifactRecord:
        """Return one named artifact of a run."""
        records = {record.name: record for record in self.list(run_id)}
        if name not in records:
            known = ", ".join(sorted(records)) or "none"
            raise NotFound(f"run {run_id[:12]} has no artifact {name!r} (it has: {known})")
        return records[name]

    def is_referenced(self, sha256: str) -> bool:
        """Return whether any run still points at these bytes."""
        from sqlalchemy import select

        with self._store.read() as conn:
            return conn.execute(
                select(Artifact.id).where(Artifact.sha256 == sha256).limit(1)
            ).first() is not None


def referenced_addresses(store: Store) -> set[str]:
    """Return every sha256 address a record points at: run artifacts, dataset snapshots …

    Every column named ``*sha256`` of every table is an address in the artifact store,
    so a table added later (a model registry) is covered without touching this function.
    """
    from sqlalchemy import select, union

    from loopml.store.schema import Base

    columns = [column for table in Base.metadata.sorted_tables for column in table.columns
               if column.name.endswith("sha256")]
    query = union(*[select(column.label("sha256")).where(column.is_not(None))
                    for column in columns])
    with store.read() as conn:
        return set(conn.execute(query).scalars())


def artifact_records(conn: Connection, run_id: str) -> list[ArtifactRecord]:
    """Return a run's artifacts, read in the caller's transaction."""
    from sqlalchemy import select

    rows = conn.execute(
        select(Artifact.run_id, Artifact.name, Artifact.sha256, Artifact.size,
               Artifact.media_type, Artifact.created_at)
        .where(Artifact.run_id == run_id)
        .order_by(Artifact.name)
    )
    return [ArtifactRecord(*row) for row in rows]
