"""receipts indexes: the carrier-id index only for receipts still waiting for their mapping
(partial, small), and one by SMS_UID for a message's lifecycle (it scanned the table)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 21:23:00.418957
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_unmatched"))
        batch_op.create_index("ix_receipts_sms_uid", ["sms_uid"], unique=False)
        batch_op.create_index(
            "ix_receipts_waiting",
            ["connector_id", "carrier_id"],
            unique=False,
            sqlite_where=sa.text("sms_uid IS NULL"),
            postgresql_where=sa.text("sms_uid IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_receipts_waiting",
            sqlite_where=sa.text("sms_uid IS NULL"),
            postgresql_where=sa.text("sms_uid IS NULL"),
        )
        batch_op.drop_index("ix_receipts_sms_uid")
        batch_op.create_index(
            batch_op.f("ix_receipts_unmatched"), ["connector_id", "carrier_id"], unique=False
        )
