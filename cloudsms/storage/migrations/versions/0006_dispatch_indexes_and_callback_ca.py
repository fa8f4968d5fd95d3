"""dispatch indexes and callback CA

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 17:03:38.060937
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("callback_ca_pem", sa.Text(), nullable=True))

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_state_customer", ["state", "customer_id"], unique=False)

    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_outbox_customer_due", ["customer_id", "next_attempt_ms"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_report_outbox_customer_due")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_state_customer")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("callback_ca_pem")
