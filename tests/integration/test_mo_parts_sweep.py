"""Parts of inbound messages that never complete are deleted after ``mo_parts_ttl_s``, by the
worker's periodic sweep, on SQLite and PostgreSQL; counted in ``/metrics`` and logged."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest
from prometheus_client import REGISTRY
from seed import seed_customer
from sqlalchemy import select

from cloudsms.config import Settings
from cloudsms.domain.inbound import InboundPart
from cloudsms.runtime.platform import build_platform
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.workers.mo_parts import MoPartsSweeper

_uids = itertools.count(1)


def keep_part(store: Store, reference: int, seq: int, *, at_ms: int) -> str:
    part = InboundPart(source="85261234567", destination="85230001234", data_coding=0,
                       data=b"part", concat=(reference, 3, seq), concat_kind="udh8")  # fmt: skip
    outcome = store.store_inbound(1, part, mo_uid=f"MO{next(_uids):08d}", now_ms=at_ms,
                                  dedup_window_ms=60_000, reply_window_ms=0)  # fmt: skip
    return outcome.status


def held(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        p = tables.inbound_parts.c
        return [
            f"{r.concat_ref}#{r.seq}"
            for r in conn.execute(select(p.concat_ref, p.seq).order_by(p.concat_ref, p.seq))
        ]


def dropped_total() -> float:
    return REGISTRY.get_sample_value("cloudsms_mo_parts_dropped_total") or 0.0


async def test_the_sweep_deletes_incomplete_messages_after_the_ttl(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time_ns() // 1_000_000
    assert keep_part(store, 1, 1, at_ms=now - 5_000) == "waiting"  # stale: nothing for 5 s
    assert keep_part(store, 2, 1, at_ms=now - 5_000) == "waiting"
    assert keep_part(store, 2, 2, at_ms=now) == "waiting"  # message 2 is still coming
    before = dropped_total()
    sweeper = MoPartsSweeper(store, ttl_s=2, interval_s=0.1)
    with caplog.at_level(logging.WARNING, logger="cloudsms.inbound"):
        await sweeper.start()  # sweeps once at start
        try:
            assert held(store) == ["udh8:2/3#1", "udh8:2/3#2"]
            assert sweeper.dropped == 1
            for _ in range(100):  # message 2 gets no more parts: gone after its TTL
                if not held(store):
                    break
                await asyncio.sleep(0.05)
        finally:
            await sweeper.stop()
    assert held(store) == [] and sweeper.dropped == 3
    assert dropped_total() - before == 3
    assert "dropped 1 parts of inbound messages that never completed" in caplog.text


def test_the_worker_roles_run_the_sweep(sqlite_url: str) -> None:
    seed = Store.open(sqlite_url)
    seed_customer(seed.engine, with_carrier=False)
    seed.close()
    for role, expected in (("worker", True), ("api", False), ("all", True)):
        platform = build_platform(
            Settings(database_url=sqlite_url, role=role, mo_parts_ttl_s=600, port=0)
        )
        try:
            sweep = platform.mo_parts
            assert (sweep is not None) is expected
            assert sweep is None or (sweep.ttl_ms, sweep.interval_s) == (600_000, 60.0)
            assert (sweep in platform.components()) is expected
        finally:
            platform.gate.close()
            platform.store.close()
