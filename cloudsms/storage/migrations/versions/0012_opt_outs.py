"""opt-out lists: each customer's numbers that sent STOP (or were put there by an operator or
the customer); per-destination opt-out / opt-in keywords on the country policies

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opt_outs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_opt_outs_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_outs")),
        sa.UniqueConstraint("customer_id", "number", name=op.f("uq_opt_outs_customer_id_number")),
    )
    with op.batch_alter_table("country_policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opt_out_keywords", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("opt_in_keywords", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("country_policies", schema=None) as batch_op:
        batch_op.drop_column("opt_in_keywords")
        batch_op.drop_column("opt_out_keywords")
    op.drop_table("opt_outs")
