"""Alembic environment: the engine comes from ``cloudsms.storage.migrate`` (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from cloudsms.storage.tables import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
