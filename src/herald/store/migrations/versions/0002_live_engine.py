"""live engine: the events inbox, workers with heartbeats, claimed starts of calls and messages

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import herald.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("calls", "messages"):
        op.add_column(table, sa.Column("worker_id", sa.Integer(), nullable=True))
        op.add_column(table, sa.Column("start_after", herald.store.schema.UTCDateTime(), nullable=True))
        op.add_column(table, sa.Column("start_tries", sa.Integer(), nullable=False, server_default="0"))
        op.create_index(
            f"ix_{table}_start_after",
            table,
            ["start_after"],
            unique=False,
            sqlite_where=sa.text("start_after IS NOT NULL"),
            postgresql_where=sa.text("start_after IS NOT NULL"),
        )
    op.add_column("calls", sa.Column("error_code", sa.String(length=32), nullable=False, server_default=""))
    op.add_column("calls", sa.Column("error_msg", sa.Text(), nullable=False, server_default=""))
    op.add_column("events", sa.Column("subject", sa.String(length=16), nullable=False, server_default="call"))
    op.add_column("events", sa.Column("attempt_id", sa.String(length=64), nullable=False, server_default=""))
    op.add_column("events", sa.Column("applied_at", herald.store.schema.UTCDateTime(), nullable=True))
    op.add_column("events", sa.Column("available_at", herald.store.schema.UTCDateTime(), nullable=True))
    op.add_column("events", sa.Column("tries", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("events", sa.Column("pending_reason", sa.Text(), nullable=False, server_default=""))
    # Events stored before the inbox existed were applied when they were stored.
    op.execute("UPDATE events SET applied_at = received_at")
    op.create_index(
        "ix_events_pending",
        "events",
        ["available_at"],
        unique=False,
        sqlite_where=sa.text("applied_at IS NULL"),
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", herald.store.schema.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", herald.store.schema.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", herald.store.schema.UTCDateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(length=64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_events_pending", table_name="events")
    for column in ("pending_reason", "tries", "available_at", "applied_at", "attempt_id", "subject"):
        op.drop_column("events", column)
    op.drop_column("calls", "error_msg")
    op.drop_column("calls", "error_code")
    for table in ("calls", "messages"):
        op.drop_index(f"ix_{table}_start_after", table_name=table)
        for column in ("start_tries", "start_after", "worker_id"):
            op.drop_column(table, column)
