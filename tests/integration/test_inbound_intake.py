"""Carriers' inbound messages at the dispatcher's links: ``Dispatcher`` + ``InboundIntake`` over a
MemoryStore, the built-in SMSC simulator as the carrier on real loopback sockets.

What is tested: an MO is answered only once stored — a store that fails makes the link answer
an error, the carrier delivers it again and it is then kept (once); receipts on the same bind
still go to the recorder; a reply is routed to the customer that sent from that number.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from cloudsms.domain.inbound import InboundArrival, InboundOutcome
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import StoreError
from cloudsms.services.config_cache import ConfigCache
from cloudsms.simulator import SmscSimulator
from cloudsms.storage.memory import MemoryStore
from cloudsms.transport.client import SmppClient
from cloudsms.workers.dispatcher import Dispatcher
from cloudsms.workers.inbound import InboundIntake


class FlakyStore(MemoryStore):
    """A MemoryStore whose first ``failures`` transactions storing MOs fail (the database is
    down)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def store_inbounds(self, arrivals: Sequence[InboundArrival], **kw: Any) -> list[InboundOutcome]:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("database is down")
        return super().store_inbounds(arrivals, **kw)


async def until(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.fixture
async def rig() -> AsyncIterator[tuple[FlakyStore, Dispatcher, SmscSimulator, InboundIntake, int]]:
    store = FlakyStore(failures=2)
    sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"}, seed=1,
                        redeliver_after_s=0.1)  # fmt: skip
    await sim.start()
    config = ConfigCache(store, poll_s=0.05)
    factory = functools.partial(SmppClient, reconnect_initial_s=0.1, throttle_initial_s=0.05)
    dispatcher = Dispatcher(store, config, client_factory=factory, renew_s=0.2)
    intake = dispatcher.inbound = InboundIntake(store, reply_window_s=3600)
    customer = store.add_customer(balance_micros=10**9)
    route = store.add_route("main")
    store.add_connector(
        ConnectorConfig(id=1, name="sim", host="127.0.0.1", port=sim.port, system_id="cloudsms",
                        password="secret", window=4, response_timeout_s=2, reconnect_max_s=1),
        route=route,
    )  # fmt: skip
    await asyncio.to_thread(config.refresh)
    await config.start()
    await dispatcher.start()
    await until(lambda: bool(dispatcher.links) and all(
        link.client.available for link in dispatcher.links.values()))  # fmt: skip
    yield store, dispatcher, sim, intake, customer
    await dispatcher.stop()
    await config.stop()
    await sim.stop()


async def test_an_mo_is_answered_only_once_stored(rig: Any) -> None:
    store, _, sim, intake, customer = rig
    store.add_inbound_number("1234", "", customer)
    assert sim.send_mo("85261234567", "1234", "Hello") == 1
    await until(lambda: sim.receipts_acked == 1)
    assert store.calls == 3  # answered with an error twice (store down), delivered again
    [record] = sim.mos  # the simulator's record of the MO: two refusals, then ESME_ROK
    assert record.statuses == [0x64, 0x64, 0] and record.acknowledged  # ESME_RX_T_APPN
    assert (record.text, record.parts, record.system_id) == ("Hello", 1, "cloudsms")
    [mo] = store.inbound_messages()
    assert (mo.text, mo.customer_id, mo.routed_by) == ("Hello", customer, "number")
    assert intake.stored == 1 and intake.duplicates == 0


async def test_receipts_and_replies_on_the_same_bind(rig: Any) -> None:
    store, dispatcher, sim, intake, customer = rig
    store.failures = 0
    stamp = time.time_ns() // 1_000_000
    message = NewMessage(
        sms_uid="R0000001", customer_id=customer, serial=1, country_code=852,
        dest_msisdn="61234567", route_name="main", sender="85230009999", content="Reply YES",
        encoding="gsm7", segments=1, priority=0, send_at_ms=stamp, customer_body=None,
        state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=1,
        currency="HKD", created_ms=stamp,
    )  # fmt: skip
    write = PacketWrite(customer_id=customer, packet_key=None, messages=(message,), answer=b"{}",
                        created_ms=stamp)  # fmt: skip
    store.accept_packets([write], replay_window_ms=0)
    dispatcher.wake()
    await until(lambda: store.get_message("R0000001").state is MessageState.DELIVERED)
    sim.send_mo("85261234567", "85230009999", "yes please")
    await until(lambda: intake.stored == 1)
    [mo] = store.inbound_messages()
    assert (mo.customer_id, mo.routed_by, mo.keyword) == (customer, "reply", "YES")
