"""report claims by worker: a dead worker's claimed reports are due again at once

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 19:23:33.079585
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_report_outbox_claimed",
            ["claimed_by"],
            unique=False,
            sqlite_where=sa.text("claimed_by IS NOT NULL"),
            postgresql_where=sa.text("claimed_by IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_report_outbox_claimed",
            sqlite_where=sa.text("claimed_by IS NOT NULL"),
            postgresql_where=sa.text("claimed_by IS NOT NULL"),
        )
        batch_op.drop_column("claimed_by")
