"""Carriers' MOs group-committed, with their STOP in the same transaction, on SQLite and PostgreSQL.

The dispatcher's link takes MO deliver_sm from the built-in SMSC simulator (the carrier) over
loopback sockets and hands them to ``InboundIntake`` over a real store, through the store's gate
as ``runtime.platform`` wires it. What is tested:

- MOs arriving while the database is busy (another writer holds it) are answered only once it
  is free and their batch committed, in fewer transactions than MOs;
- a STOP is on the customer's opt-out list, and the configuration version moved, by the time
  its deliver_sm is answered; the country policy's keywords come from the configuration in
  memory;
- when the database refuses the opt-out, the MO is not kept either (one transaction): the
  carrier is answered with an error, delivers it again, and then both are there.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from seed import seed_customer
from sqlalchemy import select, text

from cloudsms.domain.models import CountryPolicy
from cloudsms.services.config_cache import ConfigCache
from cloudsms.simulator import SmscSimulator
from cloudsms.storage import tables
from cloudsms.storage.gate import gate_for
from cloudsms.storage.store import Store
from cloudsms.transport.client import SmppClient
from cloudsms.workers.dispatcher import Dispatcher
from cloudsms.workers.inbound import InboundIntake

NUMBER = "85230001234"


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@dataclass
class Rig:
    store: Store
    sim: SmscSimulator
    intake: InboundIntake
    config: ConfigCache
    customer_id: int


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"}, seed=1,
                        redeliver_after_s=0.1, max_attempts=1000)  # fmt: skip
    await sim.start()
    seeded = seed_customer(store.engine, carrier_port=sim.port)
    store.add_inbound_number(NUMBER, "", seeded.customer_id)
    # +86 handsets opt out with 取消 only (a policy of the configuration, not a default).
    store.upsert_policy(CountryPolicy(
        country_code=86, region="CN", requires_template=False, requires_signature=False,
        requires_registered_sender=False, sender_format="any", opt_out_keywords=("取消",),
    ))  # fmt: skip
    config = ConfigCache(store, poll_s=0.05)
    factory = functools.partial(SmppClient, reconnect_initial_s=0.1, throttle_initial_s=0.05)
    dispatcher = Dispatcher(store, config, client_factory=factory, renew_s=0.2)
    # As runtime.platform wires it.
    intake = dispatcher.inbound = InboundIntake(store, reply_window_s=0)
    intake.gate = gate = gate_for(store.write_lock)
    intake.policies = lambda: config.current.snapshot.policies
    await config.start()
    await dispatcher.start()
    await until(lambda: bool(dispatcher.links) and all(
        link.client.available for link in dispatcher.links.values()))  # fmt: skip
    yield Rig(store, sim, intake, config, seeded.customer_id)
    await dispatcher.stop()
    await config.stop()
    await sim.stop()
    gate.close()


@contextmanager
def database_busy(store: Store) -> Iterator[Callable[[], None]]:
    """Another writer holds the database until the returned function is called: SQLite's write
    lock (as another cloudsms process does), a PostgreSQL table lock blocking inserts."""
    done = threading.Event()
    held = threading.Event()

    def hold() -> None:
        if store.dialect == "sqlite":
            with store.write_lock:  # type: ignore[attr-defined]
                held.set()
                done.wait(20)
            return
        with store.engine.begin() as conn:
            conn.execute(text("LOCK TABLE inbound_messages IN EXCLUSIVE MODE"))
            held.set()
            done.wait(20)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        yield done.set
    finally:
        done.set()
        thread.join()


def _stored(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(tables.inbound_messages).order_by("id")).all())


async def test_mos_arriving_together_share_a_transaction_answered_after_it(rig: Rig) -> None:
    store, sim, intake = rig.store, rig.sim, rig.intake
    with database_busy(store) as release:
        for i in range(20):
            sim.send_mo(f"8526123{i:04d}", NUMBER, f"Reply {i}")
        await until(lambda: sim.receipts_sent >= 20)
        await asyncio.sleep(0.3)  # the link has them all: none may be answered yet
        assert sim.receipts_acked == 0
        release()
        await until(lambda: sim.receipts_acked == 20)
    assert intake.stored == 20
    assert intake.transactions <= 3  # one blocked behind the other writer, then the rest at once
    rows = _stored(store)
    assert sorted(r.text for r in rows) == sorted(f"Reply {i}" for i in range(20))
    assert {(r.customer_id, r.routed_by, r.push_state) for r in rows} == {
        (rig.customer_id, "number", "pending")
    }


async def test_stop_is_on_the_list_when_the_carrier_is_answered(rig: Rig) -> None:
    store, sim, customer = rig.store, rig.sim, rig.customer_id
    version = store.config_version()
    sim.send_mo("+85261234567", NUMBER, "Ｓｔｏｐ please")
    sim.send_mo("+8613800138000", NUMBER, "STOP")  # not a keyword for +86 (its policy)
    sim.send_mo("+8613800138001", NUMBER, "取消")
    await until(lambda: sim.receipts_acked == 3)
    listed = store.list_opt_outs(customer)
    assert [(o.number, o.via, o.keyword) for o in listed] == [
        ("85261234567", "keyword", "Stop"),
        ("8613800138001", "keyword", "取消"),
    ]
    assert store.config_version() > version  # servers reload their lists
    assert len(_stored(store)) == 3  # each MO is kept and pushed too
    sim.send_mo("85261234567", NUMBER, "START")
    await until(lambda: sim.receipts_acked == 4)
    assert [o.number for o in store.list_opt_outs(customer)] == ["8613800138001"]


REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_opt_out BEFORE INSERT ON opt_outs"
        " BEGIN SELECT RAISE(ABORT, 'opt-out refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_opt_out() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'opt-out refused' USING ERRCODE = '23514'; END $$",
        "CREATE TRIGGER refuse_opt_out BEFORE INSERT ON opt_outs"
        " FOR EACH ROW EXECUTE FUNCTION refuse_opt_out()",
    ],
}
ALLOW = {
    "sqlite": ["DROP TRIGGER refuse_opt_out"],
    "postgresql": ["DROP TRIGGER refuse_opt_out ON opt_outs", "DROP FUNCTION refuse_opt_out"],
}


async def test_a_stop_the_database_refuses_keeps_neither_until_redelivered(rig: Rig) -> None:
    store, sim, customer = rig.store, rig.sim, rig.customer_id
    with store.engine.begin() as conn:
        for sql in REFUSE[store.dialect]:
            conn.execute(text(sql))
    sim.send_mo("+85261234567", NUMBER, "STOP")
    await until(lambda: sim.receipts_sent >= 3)  # refused, delivered again, refused again
    assert sim.receipts_acked == 0
    assert _stored(store) == [] and store.list_opt_outs(customer) == []  # nothing half-done
    with store.engine.begin() as conn:
        for sql in ALLOW[store.dialect]:
            conn.execute(text(sql))
    await until(lambda: sim.receipts_acked == 1)
    [mo] = _stored(store)
    assert mo.text == "STOP"
    [entry] = store.list_opt_outs(customer)
    assert (entry.number, entry.keyword) == ("85261234567", "STOP")
