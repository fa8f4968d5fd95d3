"""lean message rows (issue 14): one-part messages keep their carrier id and receipt on the
message (carrier_id, receipt_stat, receipt_err); the state indexes become partial (only the
states their queries look for); the outbox's due index holds pending rows only, and the
outbox row keeps its accepted push's HTTP status and duration (report_attempts rows are for
failed attempts only)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _partial(where: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    # Existing one-part messages keep their message_parts rows: receipts are looked up on the
    # message first, then in the parts, so nothing needs copying.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carrier_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("receipt_stat", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("receipt_err", sa.String(length=8), nullable=True))
        batch_op.drop_index("ix_messages_dispatch")
        batch_op.drop_index("ix_messages_state_customer")
        batch_op.create_index(
            "ix_messages_due", ["priority", "send_at_ms"], **_partial("state = 'accepted'")
        )
        batch_op.create_index(
            "ix_messages_submitted", ["submitted_ms"], **_partial("state = 'submitted'")
        )
        batch_op.create_index(
            "ix_messages_carrier", ["connector_id", "carrier_id"],
            **_partial("carrier_id IS NOT NULL"),
        )  # fmt: skip
        batch_op.create_index(
            "ix_messages_backlog", ["customer_id"], **_partial("state IN ('accepted', 'queued')")
        )
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("http_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_report_outbox_due")
        batch_op.create_index(
            "ix_report_outbox_due", ["next_attempt_ms"], **_partial("done_ms IS NULL")
        )


def downgrade() -> None:
    # One-part messages submitted since get the part row the older schema matches receipts by.
    op.execute(
        "INSERT INTO message_parts (sms_uid, seq, connector_id, carrier_id, submit_status,"
        " receipt_stat, receipt_err, submitted_ms, done_ms)"
        " SELECT sms_uid, 1, connector_id, carrier_id, 0, receipt_stat, receipt_err,"
        " submitted_ms, final_ms FROM messages WHERE carrier_id IS NOT NULL"
    )
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_report_outbox_due")
        batch_op.create_index("ix_report_outbox_due", ["done_ms", "next_attempt_ms"])
        batch_op.drop_column("duration_ms")
        batch_op.drop_column("http_status")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_backlog")
        batch_op.drop_index("ix_messages_carrier")
        batch_op.drop_index("ix_messages_submitted")
        batch_op.drop_index("ix_messages_due")
        batch_op.create_index("ix_messages_state_customer", ["state", "customer_id"])
        batch_op.create_index("ix_messages_dispatch", ["state", "priority", "send_at_ms"])
        batch_op.drop_column("receipt_err")
        batch_op.drop_column("receipt_stat")
        batch_op.drop_column("carrier_id")
