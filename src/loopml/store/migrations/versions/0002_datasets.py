"""Datasets: versions by content hash, contracts, splits, and run inputs (lineage).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("project_id", RowId, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("contract_yaml", sa.Text(), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name="fk_datasets_project_id_projects", ondelete="CASCADE"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", RowId, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("num_columns", sa.Integer(), nullable=False),
        sa.Column("schema_json", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("snapshot_sha256", sa.String(64), nullable=False),
        sa.Column("snapshot_size", sa.BigInteger(), nullable=False),
        sa.Column("profile_sha256", sa.String(64), nullable=False),
        sa.Column("report_sha256", sa.String(64), nullable=True),
        sa.Column("pii_json", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.UniqueConstraint("dataset_id", "content_hash", name="uq_dataset_versions_hash"),
        sa.UniqueConstraint("dataset_id", "seq", name="uq_dataset_versions_seq"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name="fk_dataset_versions_dataset_id_datasets",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "dataset_splits",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("version_id", RowId, nullable=False),
        sa.Column("spec_key", sa.String(64), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.Column("assignment_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_splits"),
        sa.UniqueConstraint("version_id", "spec_key", name="uq_dataset_splits_spec"),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_versions.id"],
                                name="fk_dataset_splits_version_id_dataset_versions",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("version_id", RowId, nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "version_id", "role", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_inputs_run_id_runs",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_versions.id"],
                                name="fk_run_inputs_version_id_dataset_versions",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_run_inputs_version", "run_inputs", ["version_id"])


def downgrade() -> None:
    for table in ("run_inputs", "dataset_splits", "dataset_versions", "datasets"):
        op.drop_table(table)
