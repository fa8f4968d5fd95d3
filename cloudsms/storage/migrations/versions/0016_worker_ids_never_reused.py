"""Worker ids are never given twice: the SQLite workers table gets AUTOINCREMENT

Without it SQLite gives a new row the largest id + 1, so a worker starting just after the last
one retired (its row deleted) took that worker's id, and the messages it had left QUEUED under
its claim looked claimed by a live worker: never recovered (seen after a kill -9 of the API
process: its worker's pipe still held a packet when it stopped). The sequence starts past every
claimer still recorded. PostgreSQL's SERIAL sequence never went back: nothing to do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: Tables whose rows name a worker as their claimer.
_CLAIMING = ("messages", "report_outbox", "inbound_messages")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "workers", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    highest = max(
        int(bind.execute(sa.text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")).scalar_one())
        for table, column in [("workers", "id"), *((t, "claimed_by") for t in _CLAIMING)]
    )
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'workers'"))
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('workers', :seq)"),
        {"seq": highest},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "workers", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
