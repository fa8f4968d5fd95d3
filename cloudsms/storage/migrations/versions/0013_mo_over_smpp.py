"""inbound messages over customers' SMPP sessions: smpp_accounts.mo (the account takes MOs as
deliver_sm), inbound_messages.channel (http or smpp: who delivers the MO, decided when stored)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("smpp_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mo", sa.Boolean(), nullable=False, server_default=sa.true()))
    # Accounts that cannot bind rx or trx cannot receive: MOs stay on HTTP for them.
    op.execute("UPDATE smpp_accounts SET mo = (binds LIKE '%rx%')")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=8), nullable=False, server_default="http")
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("channel")
    with op.batch_alter_table("smpp_accounts", schema=None) as batch_op:
        batch_op.drop_column("mo")
