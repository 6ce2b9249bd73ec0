"""Model registry: registered models, their versions, aliases and the history of alias moves.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("model_id", RowId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("native_sha256", sa.String(64), nullable=True),
        sa.Column("native_size", sa.BigInteger(), nullable=True),
        sa.Column("onnx_sha256", sa.String(64), nullable=True),
        sa.Column("onnx_size", sa.BigInteger(), nullable=True),
        sa.Column("flavour", sa.String(16), nullable=False),
        sa.Column("card_sha256", sa.String(64), nullable=True),
        sa.Column("card_html_sha256", sa.String(64), nullable=True),
        sa.Column("signature_json", sa.Text(), nullable=False),
        sa.Column("lineage_json", sa.Text(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("export_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_version"),
        sa.UniqueConstraint("model_id", "run_id", name="uq_model_versions_run"),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"],
                                name="fk_model_versions_model_id_registered_models",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", RowId, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version_id", RowId, nullable=False),
        sa.Column("moved_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"],
                                name="fk_model_aliases_model_id_registered_models",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name="fk_model_aliases_version_id_model_versions",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("model_id", RowId, nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(250), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=True),
        sa.Column("at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"],
                                name="fk_alias_events_model_id_registered_models",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_alias_events_model", "alias_events", ["model_id", "alias"])


def downgrade() -> None:
    for table in ("alias_events", "model_aliases", "model_versions", "registered_models"):
        op.drop_table(table)
