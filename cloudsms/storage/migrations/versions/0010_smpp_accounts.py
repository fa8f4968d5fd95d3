"""smpp accounts: customers' system_id / password pairs for the SMPP server; messages that
want their receipts over SMPP (the account, registered_delivery)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smpp_accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("binds", sa.String(length=16), nullable=False),
        sa.Column("max_sessions", sa.Integer(), nullable=False),
        sa.Column("throughput", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("intermediate_receipts", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_smpp_accounts_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smpp_accounts")),
        sa.UniqueConstraint("system_id", name=op.f("uq_smpp_accounts_system_id")),
    )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("smpp_account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("smpp_receipt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("smpp_receipt")
        batch_op.drop_column("smpp_account_id")
    op.drop_table("smpp_accounts")
