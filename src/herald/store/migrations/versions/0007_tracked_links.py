"""tracked links: one unguessable token per tracked link of a sent message

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from herald.store.schema import UTCDateTime

revision = "0007"
# The lead re-chains this after 0006 (Twilio) at merge.
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracked_links",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_tracked_links_message_id_messages")),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_tracked_links")),
        sa.UniqueConstraint("message_id", "link_id", name=op.f("uq_tracked_links_message_id_link_id")),
    )


def downgrade() -> None:
    op.drop_table("tracked_links")
