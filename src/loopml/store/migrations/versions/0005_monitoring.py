"""Monitoring: windows with their sketches and verdicts, cursors, references, alerts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("start_key", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", Time, nullable=True),
        sa.Column("last_ts", Time, nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sketch", sa.Text(), nullable=False),
        sa.Column("segments", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("dirty", sa.Integer(), nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_windows"),
        sa.UniqueConstraint("model", "version", "window", "start_key",
                            name="uq_monitor_windows_model"),
    )
    op.create_table(
        "monitor_cursors",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("predictions", sa.String(128), nullable=True),
        sa.Column("feedback", sa.String(128), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_cursors"),
    )
    op.create_table(
        "monitor_references",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_monitor_references"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("start_key", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("webhook", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("model", "version", "window", "start_key", "kind",
                            name="uq_alerts_model"),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    for table in ("alerts", "monitor_references", "monitor_cursors", "monitor_windows"):
        op.drop_table(table)
