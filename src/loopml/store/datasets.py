"""Datasets, their versions, splits, and which runs used them (lineage)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound
from loopml.store.runs import check_key, ensure_project
from loopml.store.schema import (
    Dataset,
    DatasetSplit,
    DatasetVersion,
    Project,
    Run,
    RunInput,
    utcnow,
)
from loopml.store.upsert import insert_ignore

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store.database import Store

HASH_PREFIX_MIN = 6


@dataclass(frozen=True)
class VersionRecord:
    dataset: str
    project: str
    seq: int
    content_hash: str
    num_rows: int
    num_columns: int
    schema: list[dict[str, str]]
    source: str
    snapshot_sha256: str
    snapshot_size: int
    profile_sha256: str
    report_sha256: str | None
    pii: dict[str, Any]
    created_at: datetime
    id: int

    @property
    def ref(self) -> str:
        """The short reference users type: ``name@seq``."""
        return f"{self.dataset}@{self.seq}"


@dataclass(frozen=True)
class SplitRecord:
    spec: dict[str, Any]
    counts: dict[str, int]
    assignment_sha256: str
    spec_key: str


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``NAME[@VERSION]`` into its parts.

    >>> parse_ref("credit@3")
    ('credit', '3')
    >>> parse_ref("credit")
    ('credit', None)
    """
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("a dataset reference looks like NAME or NAME@VERSION")
    name, _, version = ref.partition("@")
    if not name or (_ and not version):
        raise InvalidInput(f"dataset reference {ref!r} should look like NAME or NAME@VERSION")
    return name, version or None


def _version_record(row: Any) -> VersionRecord:
    return VersionRecord(
        dataset=row.name, project=row.project, seq=row.seq, content_hash=row.content_hash,
        num_rows=row.num_rows, num_columns=row.num_columns, schema=json.loads(row.schema_json),
        source=row.source, snapshot_sha256=row.snapshot_sha256, snapshot_size=row.snapshot_size,
        profile_sha256=row.profile_sha256, report_sha256=row.report_sha256,
        pii=json.loads(row.pii_json), created_at=row.created_at, id=row.id,
    )


def _version_select() -> Any:
    from sqlalchemy import select

    columns = [c for c in DatasetVersion.__table__.columns if c.name != "dataset_id"]
    return (
        select(*columns, Dataset.name, Project.name.label("project"))
        .select_from(DatasetVersion)
        .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
        .join(Project, Project.id == Dataset.project_id)
    )


class Datasets:
    """Read and write dataset metadata in one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _dataset_id(self, conn: Connection, project: str, name: str) -> int | None:
        from sqlalchemy import select

        return conn.execute(
            select(Dataset.id).join(Project, Project.id == Dataset.project_id)
            .where(Project.name == project, Dataset.name == name)
        ).scalar_one_or_none()

    def add_version(
        self,
        *,
        project: str,
        name: str,
        content_hash: str,
        num_rows: int,
        num_columns: int,
        schema: list[dict[str, str]],
        source: str,
        snapshot_sha256: str,
        snapshot_size: int,
        profile_sha256: str,
        report_sha256: str | None,
        pii: dict[str, Any],
        contract_yaml: str | None,
    ) -> tuple[VersionRecord, bool]:
        """Record a version (and the dataset, on first use); return it and whether it is new.

        The same content under the same name returns the existing version unchanged. The
        contract is stored only when the dataset has none yet (the first version).

        Safe under concurrent writers: the dataset's row is locked (``SELECT … FOR UPDATE``
        on PostgreSQL; SQLite's write transactions are exclusive already), so two ingests
        never pick the same next number, and identical content becomes one version.
        """
        from sqlalchemy import func, insert, select, update

        check_key(project, what="project")
        check_key(name, what="dataset")
        now = utcnow()
        with self._store.write() as conn:
            project_id = ensure_project(conn, project)
            insert_ignore(conn, Dataset.__table__, [{"project_id": project_id, "name": name,
                                                     "created_at": now}])
            # Held until commit: the next writer of this dataset waits here, then sees
            # this transaction's version (READ COMMITTED reads anew at each statement).
            dataset_id = conn.execute(
                select(Dataset.id).where(Dataset.project_id == project_id, Dataset.name == name)
                .with_for_update()
            ).scalar_one()
            existing = conn.execute(
                _version_select().where(DatasetVersion.dataset_id == dataset_id,
                                        DatasetVersion.content_hash == content_hash)
            ).one_or_none()
            if existing is not None:
                return _version_record(existing), False
            seq = (conn.execute(
                select(func.max(DatasetVersion.seq)).where(DatasetVersion.dataset_id == dataset_id)
            ).scalar_one() or 0) + 1
            conn.execute(insert(DatasetVersion), {
                "dataset_id": dataset_id, "seq": seq, "content_hash": content_hash,
                "num_rows": num_rows, "num_columns": num_columns,
                "schema_json": json.dumps(schema), "source": source,
                "snapshot_sha256": snapshot_sha256, "snapshot_size": snapshot_size,
                "profile_sha256": profile_sha256, "report_sha256": report_sha256,
                "pii_json": json.dumps(pii, sort_keys=True), "created_at": now,
            })
            if contract_yaml is not None:
                conn.execute(
                    update(Dataset)
                    .where(Dataset.id == dataset_id, Dataset.contract_yaml.is_(None))
                    .values(contract_yaml=contract_yaml)
                )
            row = conn.execute(
                _version_select().where(DatasetVersion.dataset_id == dataset_id,
                                        DatasetVersion.seq == seq)
            ).one()
            return _version_record(row), True

    def get_version(self, ref: str, *, project: str | None = None) -> VersionRecord:
        """Return the version ``NAME@SEQ``, ``NAME@HASHPREFIX`` or ``NAME`` (the latest)."""
        name, version = parse_ref(ref)
        query = _version_select().where(Dataset.name == name)
        if project is not None:
            query = query.where(Project.name == project)
        with self._store.read() as conn:
            rows = conn.execute(query.order_by(DatasetVersion.seq.desc())).all()
        if not rows:
            where = f" in project {project!r}" if project else ""
            raise NotFound(f"no dataset named {name!r}{where} (see `loopml data list`)")
        if len({r.project for r in rows}) > 1:
            projects = ", ".join(sorted({r.project for r in rows}))
            raise InvalidInput(f"dataset {name!r} exists in several projects ({projects}): "
                               "pass --project")
        if version is None or version == "latest":
            return _version_record(rows[0])
        if version.isdigit() and len(version) < HASH_PREFIX_MIN:
            matches = [r for r in rows if r.seq == int(version)]
        elif len(version) >= HASH_PREFIX_MIN:
            matches = [r for r in rows if r.content_hash.startswith(version.lower())]
        else:
            matches = []
        if len(matches) != 1:
            known = ", ".join(f"{r.seq} ({r.content_hash[:12]})" for r in rows[:10])
            raise NotFound(f"dataset {name!r} has no version {version!r} (versions: {known})")
        return _version_record(matches[0])

    def list_versions(self, name: str | None = None, *, project: str | None = None
                      ) -> list[VersionRecord]:
        """Return versions, newest dataset activity first."""
        query = _version_select().order_by(Dataset.name, DatasetVersion.seq.desc())
        if name is not None:
            query = query.where(Dataset.name == name)
        if project is not None:
            query = query.where(Project.name == project)
        with self._store.read() as conn:
            return [_version_record(r) for r in conn.execute(query)]

    def contract(self, project: str, name: str) -> str | None:
        """Return the stored contract YAML of a dataset, if any."""
        from sqlalchemy import select

        with self._store.read() as conn:
            return conn.execute(
                select(Dataset.contract_yaml).join(Project, Project.id == Dataset.project_id)
                .where(Project.name == project, Dataset.name == name)
            ).scalar_one_or_none()

    def set_contract(self, project: str, name: str, contract_yaml: str) -> None:
        """Replace a dataset's contract."""
        from sqlalchemy import update

        with self._store.write() as conn:
            dataset_id = self._dataset_id(conn, project, name)
            if dataset_id is None:
                raise NotFound(f"no dataset named {name!r} in project {project!r}")
            conn.execute(update(Dataset).where(Dataset.id == dataset_id)
                         .values(contract_yaml=contract_yaml))

    def record_split(self, version_id: int, *, spec: dict[str, Any], spec_key: str,
                     counts: dict[str, int], assignment_sha256: str) -> SplitRecord:
        """Record a split of a version (the same spec twice records it once)."""
        with self._store.write() as conn:
            insert_ignore(conn, DatasetSplit.__table__, [{
                "version_id": version_id, "spec_key": spec_key,
                "spec_json": json.dumps(spec, sort_keys=True),
                "counts_json": json.dumps(counts), "assignment_sha256": assignment_sha256,
                "created_at": utcnow(),
            }])
        return SplitRecord(spec=spec, counts=counts, assignment_sha256=assignment_sha256,
                           spec_key=spec_key)

    def splits(self, version_id: int) -> list[SplitRecord]:
        """Return the recorded splits of a version."""
        from sqlalchemy import select

        with self._store.read() as conn:
            rows = conn.execute(
                select(DatasetSplit).where(DatasetSplit.version_id == version_id)
                .order_by(DatasetSplit.created_at)
            ).all()
        return [SplitRecord(spec=json.loads(r.spec_json), counts=json.loads(r.counts_json),
                            assignment_sha256=r.assignment_sha256, spec_key=r.spec_key)
                for r in rows]

    def record_input(self, run_id: str, version_id: int, *, role: str) -> None:
        """Record that a run used a dataset version in ``role``."""
        check_key(role, what="role")
        with self._store.write() as conn:
            insert_ignore(conn, RunInput.__table__,
                          [{"run_id": run_id, "version_id": version_id, "role": role}])

    def users(self, version_id: int) -> list[tuple[str, str, str]]:
        """Return (run id, run name, role) of every run that used a version."""
        from sqlalchemy import select

        with self._store.read() as conn:
            return [tuple(r) for r in conn.execute(
                select(Run.id, Run.name, RunInput.role).join(Run, Run.id == RunInput.run_id)
                .where(RunInput.version_id == version_id).order_by(Run.start_time)
            )]

    def inputs_of(self, run_id: str) -> list[tuple[VersionRecord, str]]:
        """Return the dataset versions a run used, with their roles."""
        query = _version_select().add_columns(RunInput.role).join(
            RunInput, RunInput.version_id == DatasetVersion.id
        ).where(RunInput.run_id == run_id)
        with self._store.read() as conn:
            return [(_version_record(r), r.role) for r in conn.execute(query)]
