"""Report SERIALs in a table of their own: customers.report_serial → report_serials.serial

The report claim bumps the counter in the worker's dispatch transaction; on PostgreSQL its lock
on the customer's row made the API's accepts (which lock that row for the balance) wait for the
worker's commits. Counters in use are carried over, so a customer's SERIALs go on from where
they were.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 21:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_serials",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("serial", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.execute(
        "INSERT INTO report_serials (customer_id, serial)"
        " SELECT id, report_serial FROM customers WHERE report_serial > 0"
    )
    # SQLite ≥ 3.35 drops a column in place; a batch rebuild of customers would fail on the
    # foreign keys of every table that references it (they are enforced).
    op.execute("ALTER TABLE customers DROP COLUMN report_serial")


def downgrade() -> None:
    op.execute("ALTER TABLE customers ADD COLUMN report_serial INTEGER DEFAULT '0' NOT NULL")
    op.execute(
        "UPDATE customers SET report_serial = (SELECT serial FROM report_serials"
        " WHERE report_serials.customer_id = customers.id)"
        " WHERE id IN (SELECT customer_id FROM report_serials)"
    )
    op.drop_table("report_serials")
