"""SMPP validity_period and submit_multi: messages.expires_ms (a message's own deadline, with a
partial index by state for the expiry job) and messages.smpp_message_id (the message_id a
submit_multi recipient's receipts carry)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("smpp_message_id", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_messages_expires",
        "messages",
        ["state", "expires_ms"],
        unique=False,
        sqlite_where=sa.text("expires_ms IS NOT NULL"),
        postgresql_where=sa.text("expires_ms IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_expires", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("smpp_message_id")
        batch_op.drop_column("expires_ms")
