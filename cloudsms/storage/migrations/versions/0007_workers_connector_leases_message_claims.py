"""workers, connector leases, message claims

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:26:21.857531
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_table(
        "connector_leases",
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.Integer(), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_leases_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector_id", name=op.f("pk_connector_leases")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("via_connector", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_messages_handoff",
            ["via_connector", "send_at_ms"],
            unique=False,
            sqlite_where=sa.text("via_connector IS NOT NULL"),
            postgresql_where=sa.text("via_connector IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_messages_handoff",
            sqlite_where=sa.text("via_connector IS NOT NULL"),
            postgresql_where=sa.text("via_connector IS NOT NULL"),
        )
        batch_op.drop_column("via_connector")
        batch_op.drop_column("claimed_by")

    op.drop_table("connector_leases")
    op.drop_table("workers")
