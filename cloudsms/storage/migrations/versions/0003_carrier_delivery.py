"""carrier delivery

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:27:44.388485
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("password", sa.String(length=9), nullable=False),
        sa.Column("system_type", sa.String(length=13), nullable=False),
        sa.Column("bind_mode", sa.String(length=8), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("throughput", sa.Integer(), nullable=False),
        sa.Column("enquire_link_s", sa.Integer(), nullable=False),
        sa.Column("response_timeout_s", sa.Integer(), nullable=False),
        sa.Column("reconnect_max_s", sa.Integer(), nullable=False),
        sa.Column("long_mode", sa.String(length=8), nullable=False),
        sa.Column("data_codings", sa.String(length=16), nullable=False),
        sa.Column("source_ton", sa.Integer(), nullable=True),
        sa.Column("source_npi", sa.Integer(), nullable=True),
        sa.Column("dest_ton", sa.Integer(), nullable=False),
        sa.Column("dest_npi", sa.Integer(), nullable=False),
        sa.Column("id_mode", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
        sa.UniqueConstraint("name", name=op.f("uq_connectors_name")),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=False),
        sa.Column("stat", sa.String(length=8), nullable=False),
        sa.Column("err", sa.String(length=8), nullable=True),
        sa.Column("sms_uid", sa.String(length=32), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index("ix_receipts_unmatched", ["connector_id", "carrier_id"], unique=False)

    op.create_table(
        "report_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sms_uid", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("sms_state", sa.Integer(), nullable=False),
        sa.Column("result_desc", sa.String(length=32), nullable=False),
        sa.Column("report_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_outbox")),
    )
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_report_outbox_due", ["done_ms", "next_attempt_ms"], unique=False)
        batch_op.create_index("ix_report_outbox_uid", ["sms_uid"], unique=False)

    op.create_table(
        "route_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_route_rules_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["routes.id"],
            name=op.f("fk_route_rules_route_id_routes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_rules")),
        sa.UniqueConstraint(
            "route_id",
            "prefix",
            "connector_id",
            name=op.f("uq_route_rules_route_id_prefix_connector_id"),
        ),
    )
    op.create_table(
        "message_parts",
        sa.Column("sms_uid", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.String(length=64), nullable=True),
        sa.Column("submit_status", sa.Integer(), nullable=True),
        sa.Column("receipt_stat", sa.String(length=8), nullable=True),
        sa.Column("receipt_err", sa.String(length=8), nullable=True),
        sa.Column("submitted_ms", sa.BigInteger(), nullable=True),
        sa.Column("done_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sms_uid"],
            ["messages.sms_uid"],
            name=op.f("fk_message_parts_sms_uid_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sms_uid", "seq", name=op.f("pk_message_parts")),
    )
    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_parts_carrier", ["connector_id", "carrier_id"], unique=False
        )

    op.create_table(
        "connector_status",
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("window_in_use", sa.Integer(), nullable=False),
        sa.Column("window_size", sa.Integer(), nullable=False),
        sa.Column("submit_rate", sa.Integer(), nullable=False),
        sa.Column("submitted_total", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_status_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector_id", name=op.f("pk_connector_status")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("connector_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("submitted_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("final_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("final_ms")
        batch_op.drop_column("submitted_ms")
        batch_op.drop_column("connector_id")
        batch_op.drop_column("attempts")

    with op.batch_alter_table("message_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_message_parts_carrier")

    op.drop_table("message_parts")
    op.drop_table("route_rules")
    with op.batch_alter_table("report_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_report_outbox_uid")
        batch_op.drop_index("ix_report_outbox_due")

    op.drop_table("report_outbox")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_unmatched")

    op.drop_table("receipts")
    op.drop_table("connector_status")
    op.drop_table("connectors")
