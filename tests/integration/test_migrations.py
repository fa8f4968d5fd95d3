"""Migrations produce exactly the declared schema on both engines, and walk down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from cloudsms.storage import tables
from cloudsms.storage.engine import make_engine
from cloudsms.storage.migrate import downgrade, upgrade


def test_migrations_match_tables_and_reverse(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []
            policies = {r.region for r in conn.execute(select(tables.country_policies))}
        assert {"CN", "HK", "KR", "AE"} <= policies
        downgrade(engine, "base")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(select(tables.config_version.c.version)).scalar() == 1
    finally:
        engine.dispose()
