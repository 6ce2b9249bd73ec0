"""The tables of the metadata store, as SQLAlchemy 2 declarative models.

The Alembic migrations in ``migrations/versions`` create exactly these tables; a test
compares the two. Later parts (datasets, model versions, aliases, reports, alerts) add
tables that point at ``runs`` and ``artifacts`` by key; nothing here has to change for them.

Conventions: run ids are 32-character hex uuids; times are timezone-aware UTC datetimes
for rows people read, and integer milliseconds since the epoch for metric points, which
are written by the hundred thousand. A metric value of NULL means NaN (SQLite cannot
store NaN; both backends store it the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations on every backend can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# An autoincrementing 64-bit key that is SQLite's fast rowid alias on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")

KEY_LENGTH = 250
RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite drops the zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: loopml stores aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    host: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    pid: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_runs_project_start", "project_id", "start_time"),
        Index("ix_runs_parent", "parent_id"),
    )


class Param(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Tag(Base):
    __tablename__ = "tags"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Metric(Base):
    """One logged point. No foreign key: points are written in bulk and cascade by hand."""

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    timestamp: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_metrics_run_key_step", "run_id", "key", "step"),)


class LatestMetric(Base):
    """The point with the highest step per (run, key), kept up to date on every flush."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Artifact(Base):
    """A named file of a run; the bytes live in the artifact store under ``sha256``."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(KEY_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "name", name="uq_artifacts_run_name"),
        Index("ix_artifacts_sha256", "sha256"),
    )


class Dataset(Base):
    """A named dataset of a project; its contract is the YAML users can edit."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(KEY_LENGTH))
    contract_yaml: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),)


class DatasetVersion(Base):
    """One immutable version of a dataset, identified by the hash of its content."""

    __tablename__ = "dataset_versions"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    num_rows: Mapped[int] = mapped_column(BigInteger)
    num_columns: Mapped[int] = mapped_column(Integer)
    schema_json: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    snapshot_sha256: Mapped[str] = mapped_column(String(64))
    snapshot_size: Mapped[int] = mapped_column(BigInteger)
    profile_sha256: Mapped[str] = mapped_column(String(64))
    report_sha256: Mapped[str | None] = mapped_column(String(64))
    pii_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_versions_hash"),
        UniqueConstraint("dataset_id", "seq", name="uq_dataset_versions_seq"),
    )


class DatasetSplit(Base):
    """A reproducible train/validation/test split of a version, from a recorded seed."""

    __tablename__ = "dataset_splits"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE")
    )
    spec_key: Mapped[str] = mapped_column(String(64))
    spec_json: Mapped[str] = mapped_column(Text)
    counts_json: Mapped[str] = mapped_column(Text)
    assignment_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("version_id", "spec_key", name="uq_dataset_splits_spec"),)


class RunInput(Base):
    """Lineage: a run used a dataset version, in a role such as 'train' or 'test'."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_run_inputs_version", "version_id"),)


class RegisteredModel(Base):
    """A named model: the line of versions that aliases such as ``champion`` point into."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(KEY_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("name", name="uq_registered_models_name"),)


class ModelVersion(Base):
    """One immutable version of a model: its artifacts by sha256, signature and lineage.

    ``native_sha256`` is the signed loopml pickle (None for an imported ONNX model),
    ``onnx_sha256`` the ONNX export once one passed parity; ``flavour`` says which serves.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16))
    native_sha256: Mapped[str | None] = mapped_column(String(64))
    native_size: Mapped[int | None] = mapped_column(BigInteger)
    onnx_sha256: Mapped[str | None] = mapped_column(String(64))
    onnx_size: Mapped[int | None] = mapped_column(BigInteger)
    flavour: Mapped[str] = mapped_column(String(16))
    card_sha256: Mapped[str | None] = mapped_column(String(64))
    card_html_sha256: Mapped[str | None] = mapped_column(String(64))
    signature_json: Mapped[str] = mapped_column(Text)
    lineage_json: Mapped[str] = mapped_column(Text)
    metrics_json: Mapped[str] = mapped_column(Text)
    export_json: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(KEY_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
        UniqueConstraint("model_id", "run_id", name="uq_model_versions_run"),
    )


class ModelAlias(Base):
    """Where an alias of a model points now; its moves are in ``alias_events``."""

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    moved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AliasEvent(Base):
    """One attempt to move an alias: who, when, from which version to which, why, outcome."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # moved | forced | refused
    actor: Mapped[str] = mapped_column(String(KEY_LENGTH))
    reason: Mapped[str | None] = mapped_column(Text)
    report_json: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_alias_events_model", "model_id", "alias"),)


class ApiToken(Base):
    """A bearer token of the server: its role and the sha256 of its secret, never the secret.

    ``prefix`` is the public part of the token (``lml_<prefix>_<secret>``) that finds the row;
    a revoked token keeps its row (and name) for the record.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # predict | admin
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(KEY_LENGTH))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("name", name="uq_api_tokens_name"),
        UniqueConstraint("prefix", name="uq_api_tokens_prefix"),
    )


class MonitorWindow(Base):
    """One window of one model version's predictions: its mergeable sketch and its verdict.

    ``start_key`` is the window's start in epoch milliseconds for time windows, or its
    number for row windows. ``dirty`` is set when the sketch (or the labels it joins) changed
    and cleared when ``result`` was recomputed from it, in separate transactions: a monitor
    killed in between finds the window still dirty.
    """

    __tablename__ = "monitor_windows"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    window: Mapped[str] = mapped_column(String(32))
    start_key: Mapped[int] = mapped_column(BigInteger)
    first_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(BigInteger)
    sketch: Mapped[str] = mapped_column(Text)
    segments: Mapped[str] = mapped_column(Text)  # JSON list of the segment names read into it
    result: Mapped[str | None] = mapped_column(Text)
    dirty: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("model", "version", "window", "start_key",
                         name="uq_monitor_windows_model"),
    )


class MonitorCursor(Base):
    """How far one monitor (a model and a window size) has read the prediction log."""

    __tablename__ = "monitor_cursors"

    name: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    predictions: Mapped[str | None] = mapped_column(String(128))  # last segment name read
    feedback: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(Text)  # JSON: row counts per version (row windows)
    passes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MonitorReference(Base):
    """What a model version is compared with (its data profile, its test-set outputs), once."""

    __tablename__ = "monitor_references"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """A monitoring rule crossed by one window; one row per (window, kind), however many passes."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    window: Mapped[str] = mapped_column(String(32))
    start_key: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    webhook: Mapped[str | None] = mapped_column(String(KEY_LENGTH))

    __table_args__ = (
        UniqueConstraint("model", "version", "window", "start_key", "kind",
                         name="uq_alerts_model"),
        Index("ix_alerts_created_at", "created_at"),
    )
