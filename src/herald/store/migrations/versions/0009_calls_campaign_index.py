"""calls: drop ix_calls_campaign_id, which ix_calls_campaign_order (campaign_id, id) covers

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every lookup by campaign uses (campaign_id, id) as well; on SQLite the two were the same index (an index ends
    # with the rowid), kept up to date twice for every call written.
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_campaign_id"))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_campaign_id"), ["campaign_id"], unique=False)
