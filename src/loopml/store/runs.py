"""Runs, with their projects, params and tags."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound, StoreError
from loopml.store.records import RunDetail, RunRecord
from loopml.store.schema import (
    KEY_LENGTH,
    RUN_STATUSES,
    Artifact,
    LatestMetric,
    Metric,
    Param,
    Project,
    Run,
    Tag,
    utcnow,
)
from loopml.store.upsert import insert_ignore, upsert

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store.database import Store

MIN_PREFIX = 4


def check_key(key: object, *, what: str) -> str:
    """Return ``key`` if it is a usable name for a param, metric, tag or project."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"{what} name {key!r} must be a non-empty string")
    if len(key) > KEY_LENGTH:
        raise InvalidInput(f"{what} name {key[:40]!r}… is {len(key)} characters; the limit is "
                           f"{KEY_LENGTH}")
    return key


def ensure_project(conn: Connection, name: str) -> int:
    """Return the id of project ``name``, creating it (safely under concurrency) if new."""
    from sqlalchemy import select

    insert_ignore(conn, Project.__table__, [{"name": name, "created_at": utcnow()}])
    return conn.execute(select(Project.id).where(Project.name == name)).scalar_one()


def _row_to_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        project=row.project,
        name=row.name,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        parent_id=row.parent_id,
        error=row.error,
        host=row.host,
        pid=row.pid,
    )


def _run_select() -> Any:
    from sqlalchemy import select

    return select(
        Run.id,
        Project.name.label("project"),
        Run.name,
        Run.status,
        Run.start_time,
        Run.end_time,
        Run.parent_id,
        Run.error,
        Run.host,
        Run.pid,
    ).join(Project, Project.id == Run.project_id)


class Runs:
    """Create, read, update and delete runs in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self,
        *,
        project: str | None,
        name: str,
        parent_id: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RunRecord:
        """Insert a RUNNING run (and its project, if new); return it.

        A child run with no ``project`` joins its parent's; a top-level one, ``"default"``.
        """
        from sqlalchemy import insert, select

        if project is not None:
            check_key(project, what="project")
        check_key(name, what="run")
        run_id = uuid.uuid4().hex
        now = utcnow()
        with self._store.write() as conn:
            if parent_id is not None:
                parent_id = self._resolve(conn, parent_id)
                if project is None:
                    project = conn.execute(
                        select(Project.name).join(Run, Run.project_id == Project.id)
                        .where(Run.id == parent_id)
                    ).scalar_one()
            project = project or "default"
            project_id = ensure_project(conn, project)
            conn.execute(
                insert(Run),
                {
                    "id": run_id,
                    "project_id": project_id,
                    "parent_id": parent_id,
                    "name": name,
                    "status": "RUNNING",
                    "start_time": now,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                },
            )
            if tags:
                self._set_tags(conn, run_id, tags)
        return RunRecord(
            id=run_id, project=project, name=name, status="RUNNING", start_time=now,
            parent_id=parent_id, host=socket.gethostname(), pid=os.getpid(),
        )

    def resolve(self, run_id: str) -> str:
        """Return the full id of the run whose id is or starts with ``run_id``."""
        with self._store.read() as conn:
            return self._resolve(conn, run_id)

    def _resolve(self, conn: Connection, run_id: str) -> str:
        from sqlalchemy import select

        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"run id {run_id!r} must be a non-empty string")
        exact = conn.execute(select(Run.id).where(Run.id == run_id)).scalar_one_or_none()
        if exact is not None:
            return exact
        if len(run_id) >= MIN_PREFIX and all(c in "0123456789abcdef" for c in run_id):
            matches = conn.execute(
                select(Run.id).where(Run.id.like(run_id + "%")).limit(3)
            ).scalars().all()
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidInput(
                    f"run id prefix {run_id!r} matches several runs "
                    f"({', '.join(m[:12] for m in matches)}…): give more characters"
                )
        raise NotFound(f"no run with id {run_id!r} (see `loopml runs list`)")

    def get(self, run_id: str) -> RunRecord:
        """Return the run with this id or unique id prefix."""
        with self._store.read() as conn:
            full = self._resolve(conn, run_id)
            row = conn.execute(_run_select().where(Run.id == full)).one()
        return _row_to_record(row)

    def mark_gone(self) -> list[str]:
        """Mark KILLED the RUNNING runs of this host whose process is gone; return their ids.

        Called by every listing, so a run whose process was SIGKILLed does not stay
        RUNNING forever. Runs of other hosts are left alone: their processes cannot be
        seen from here. Best effort: a store that refuses writes (read-only, a replica)
        marks nothing and the listing goes on.

        Caveat: a run is matched to its process by host name and pid only (no boot or PID
        namespace id is recorded). A container that shares this host name (``--uts=host``,
        ``--network host``) but not its PID namespace writes pids that mean nothing here,
        and its live runs may be marked KILLED by a listing outside it; give such
        containers their own host name (Docker's default) when they share a store.
        """
        from sqlalchemy import select, update

        from loopml.store.processes import gone_given, process_state, this_host

        host = this_host()
        marked: list[str] = []
        try:
            with self._store.read() as conn:
                candidates = conn.execute(
                    select(Run.id, Run.pid, Run.start_time)
                    .where(Run.status == "RUNNING", Run.host == host)
                ).all()
            states = {pid: process_state(pid) for pid in {pid for _, pid, _ in candidates}}
            gone = [(run_id, pid) for run_id, pid, started in candidates
                    if gone_given(states[pid], _aware(started))]
            for run_id, pid in gone:
                with self._store.write() as conn:
                    conn.execute(
                        update(Run)
                        .where(Run.id == run_id, Run.status == "RUNNING")
                        .values(status="KILLED", end_time=utcnow(),
                                error=f"process gone (pid {pid} on {host} ended without "
                                      "ending the run)")
                    )
                marked.append(run_id)
        except StoreError:
            pass  # a read-only store still lists; its dead runs just stay RUNNING
        return marked

    def list(
        self,
        *,
        project: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        top_level: bool = False,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Return runs, newest first, filtered by project, status and parent."""
        if status is not None and status not in RUN_STATUSES:
            raise InvalidInput(f"status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        query = _run_select().order_by(Run.start_time.desc(), Run.id)
        if project is not None:
            query = query.where(Project.name == project)
        if status is not None:
            query = query.where(Run.status == status)
        if parent_id is not None:
            query = query.where(Run.parent_id == parent_id)
        elif top_level:
            query = query.where(Run.parent_id.is_(None))
        if limit is not None:
            query = query.limit(limit)
        self.mark_gone()
        with self._store.read() as conn:
            return [_row_to_record(row) for row in conn.execute(query)]

    def finish(self, run_id: str, *, status: str, error: str | None = None,
               end_time: datetime | None = None) -> None:
        """Mark a run FINISHED, FAILED or KILLED."""
        from sqlalchemy import update

        if status not in RUN_STATUSES[1:]:
            raise InvalidInput(f"a run ends as one of {', '.join(RUN_STATUSES[1:])}, "
                               f"not {status!r}")
        with self._store.write() as conn:
            result = conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, error=error, end_time=end_time or utcnow())
            )
            if result.rowcount == 0:
                raise NotFound(f"no run with id {run_id!r}")

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record params; a param once set keeps its value (a different value is an error)."""
        from sqlalchemy import select

        values = {check_key(k, what="param"): _param_text(v) for k, v in params.items()}
        if not values:
            return
        with self._store.write() as conn:
            existing = dict(
                conn.execute(
                    select(Param.key, Param.value).where(
                        Param.run_id == run_id, Param.key.in_(list(values))
                    )
                ).all()
            )
            for key, old in existing.items():
                if old != values[key]:
                    raise InvalidInput(
                        f"param {key!r} of run {run_id[:12]} is already {old!r}; params cannot "
                        f"change (got {values[key]!r}): log it as a tag or start a new run"
                    )
            insert_ignore(
                conn,
                Param.__table__,
                [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()
                 if k not in existing],
            )

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        """Set tags, overwriting earlier values of the same keys."""
        with self._store.write() as conn:
            self._set_tags(conn, run_id, tags)

    def _set_tags(self, conn: Connection, run_id: str, tags: Mapping[str, object]) -> None:
        rows = [{"run_id": run_id, "key": check_key(k, what="tag"), "value": str(v)}
                for k, v in tags.items()]
        upsert(conn, Tag.__table__, rows, key=["run_id", "key"], update=["value"])

    def detail(self, run_id: str) -> RunDetail:
        """Return a run with its params, tags, latest metrics, artifacts and child runs."""
        from sqlalchemy import select

        from loopml.store.artifact_index import artifact_records
        from loopml.store.metrics import latest_points

        self.mark_gone()
        with self._store.read() as conn:
            full = self._resolve(conn, run_id)
            run = _row_to_record(conn.execute(_run_select().where(Run.id == full)).one())
            params = dict(conn.execute(
                select(Param.key, Param.value).where(Param.run_id == full).order_by(Param.key)
            ).all())
            tags = dict(conn.execute(
                select(Tag.key, Tag.value).where(Tag.run_id == full).order_by(Tag.key)
            ).all())
            metrics = latest_points(conn, [full]).get(full, {})
            artifacts = artifact_records(conn, full)
            children = list(conn.execute(
                select(Run.id).where(Run.parent_id == full).order_by(Run.start_time)
            ).scalars())
        return RunDetail(run=run, params=params, tags=tags, metrics=metrics,
                         artifacts=artifacts, children=children)

    def delete(self, run_id: str) -> list[str]:
        """Delete a run and its descendants with everything logged to them; return their ids.

        Artifact bytes stay in the artifact store: other runs may share them by content.
        """
        from sqlalchemy import delete, select

        with self._store.write() as conn:
            root = self._resolve(conn, run_id)
            doomed, frontier = [root], [root]
            while frontier:
                frontier = list(conn.execute(
                    select(Run.id).where(Run.parent_id.in_(frontier))
                ).scalars())
                doomed.extend(frontier)
            for table in (Metric, LatestMetric, Param, Tag, Artifact):
                conn.execute(delete(table).where(table.run_id.in_(doomed)))
            conn.execute(delete(Run).where(Run.id.in_(doomed)))
        return doomed


def _aware(moment: datetime | None) -> datetime | None:
    """Return ``moment`` with UTC attached if the driver handed it back naive."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _param_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    try:  # numpy scalars and the like
        return str(value.item())  # type: ignore[attr-defined]
    except AttributeError:
        return str(value)
