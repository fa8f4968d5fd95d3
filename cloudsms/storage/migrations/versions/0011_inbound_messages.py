"""inbound messages (MO): inbound numbers, parts waiting for the others, whole messages and their
push outbox; customers' mo_url; an index for reply matching

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_numbers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_inbound_numbers_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_numbers")),
        sa.UniqueConstraint("number", "keyword", name=op.f("uq_inbound_numbers_number_keyword")),
    )
    op.create_table(
        "inbound_parts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("concat_ref", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_parts")),
        sa.UniqueConstraint(
            "connector_id",
            "source",
            "destination",
            "concat_ref",
            "seq",
            name=op.f("uq_inbound_parts_connector_id_source_destination_concat_ref_seq"),
        ),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("mo_uid", sa.String(length=32), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("routed_by", sa.String(length=16), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("push_state", sa.String(length=16), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.Column("claimed_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("mo_uid", name=op.f("uq_inbound_messages_mo_uid")),
    )
    op.create_index(
        "ix_inbound_messages_due", "inbound_messages", ["push_state", "next_attempt_ms"]
    )
    op.create_index("ix_inbound_messages_dedup", "inbound_messages", ["dedup_key", "received_ms"])
    op.create_index(
        "ix_inbound_messages_customer", "inbound_messages", ["customer_id", "received_ms"]
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mo_url", sa.Text(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_dest", ["dest_msisdn", "created_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_dest")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("mo_url")
    op.drop_index("ix_inbound_messages_customer", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_dedup", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_due", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("inbound_parts")
    op.drop_table("inbound_numbers")
