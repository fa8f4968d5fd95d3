"""Migrations produce exactly the declared schema on both engines, and walk down and up again."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from cloudsms.storage import tables
from cloudsms.storage.engine import make_engine
from cloudsms.storage.migrate import downgrade, upgrade
from cloudsms.storage.store import Store


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


def test_0016_starts_worker_ids_past_every_recorded_claimer(tmp_path: Path) -> None:
    # A database of schema 0015 whose workers 2 and 3 retired (rows deleted), worker 3 leaving
    # a claim behind: after the upgrade the next worker's id is past it, so that claim reads as
    # a dead worker's (before, SQLite gave the largest id + 1: 2, then 3).
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0015")
        with engine.begin() as conn:
            for pid in (1, 2, 3):
                conn.execute(
                    tables.workers.insert().values(
                        name=f"h:{pid}", host="h", pid=pid, role="worker", started_ms=0,
                        lease_until_ms=0,
                    )
                )  # fmt: skip
            conn.execute(tables.workers.delete().where(tables.workers.c.id >= 2))
            conn.execute(
                tables.inbound_messages.insert().values(
                    mo_uid="MO1", connector_id=1, source="1", destination="2", text="", parts=1,
                    data_coding=0, keyword="", dedup_key="k", routed_by="unrouted",
                    received_ms=0, push_state="pending", next_attempt_ms=0, claimed_by=3,
                )
            )  # fmt: skip
        upgrade(engine)
        store = Store(engine)
        ids = [
            store.register_worker(name="h:4", host="h", pid=4, role="worker", lease_ms=1),
            store.register_worker(name="h:5", host="h", pid=5, role="worker", lease_ms=1),
        ]
        assert ids == [4, 5]
        store.retire_worker(5)
        assert store.register_worker(name="h:6", host="h", pid=6, role="worker", lease_ms=1) == 6
    finally:
        engine.dispose()


def test_0017_carries_report_serials_over(database_url: str) -> None:
    # Customers' counters move to report_serials: the next report SERIAL follows the last one
    # pushed before the upgrade (41 → 42), and a customer who never had one starts at 1.
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0016")
        with engine.begin() as conn:
            for name in ("old", "new"):
                conn.execute(
                    text(
                        "INSERT INTO customers (name, auth_key, enabled, currency, balance_micros,"
                        " credit_limit_micros, report_intermediate, created_ms, updated_ms)"
                        " VALUES (:n, :n, true, 'HKD', 0, 0, false, 0, 0)"
                    ),
                    {"n": name},
                )
            conn.execute(text("UPDATE customers SET report_serial = 41 WHERE name = 'old'"))
            ids = dict(conn.execute(text("SELECT name, id FROM customers")).all())
        upgrade(engine)
        store = Store(engine)
        assert store.next_serial(ids["old"]) == 42
        assert store.next_serial(ids["new"]) == 1
        downgrade(engine, "0016")
        with engine.connect() as conn:
            serials = dict(conn.execute(text("SELECT name, report_serial FROM customers")).all())
        assert serials == {"old": 42, "new": 1}
    finally:
        engine.dispose()
