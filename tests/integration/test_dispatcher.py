"""The dispatcher on its own: ``Dispatcher`` over a MemoryStore and the built-in SMSC simulator.

Real loopback sockets to the simulator (the carrier), no database: what is tested is the
dispatcher's own logic — claiming, routing to links, submit outcomes, receipts, retries, local
errors and links that follow the configuration.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.pipeline import LocalClaim, OutboundMessage
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.status import MessageState
from cloudsms.services.config_cache import ConfigCache
from cloudsms.simulator import SmscSimulator
from cloudsms.simulator.behaviours import (
    Behaviour,
    DisconnectMidWindow,
    ErrorOnSubmit,
    Throttling,
)
from cloudsms.smpp.constants import CommandStatus
from cloudsms.storage.memory import MemoryStore
from cloudsms.storage.writer import GroupCommitWriter
from cloudsms.transport.client import SmppClient
from cloudsms.workers.dispatcher import STORE_POLL_S, Dispatcher

FEE = 50_000
_uids = itertools.count(1)


def now() -> int:
    return time.time_ns() // 1_000_000


def connector(port: int, *, cid: int = 1, name: str = "sim", **kw: Any) -> ConnectorConfig:
    return ConnectorConfig(id=cid, name=name, host="127.0.0.1", port=port, system_id="cloudsms",
                           password="secret", window=4, response_timeout_s=2,
                           reconnect_max_s=1, **kw)  # fmt: skip


@dataclass
class Rig:
    store: MemoryStore
    config: ConfigCache
    dispatcher: Dispatcher
    sims: list[SmscSimulator] = field(default_factory=list)
    customer_id: int = 0
    route: int = 0

    def accept(self, n: int = 1, *, sender: str = "CloudSMS") -> list[str]:
        stamp = now()
        uids = [f"D{next(_uids):08d}" for _ in range(n)]
        messages = tuple(
            NewMessage(
                sms_uid=uid, customer_id=self.customer_id, serial=1, country_code=852,
                dest_msisdn=f"6100{i:04d}", route_name="main", sender=sender, content="hello",
                encoding="gsm7", segments=1, priority=0, send_at_ms=stamp, customer_body=None,
                state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=FEE,
                currency="HKD", created_ms=stamp,
            )
            for i, uid in enumerate(uids)
        )  # fmt: skip
        self.store.accept_packets(
            [PacketWrite(customer_id=self.customer_id, packet_key=None, messages=messages,
                         answer=b"{}", created_ms=stamp)],
            replay_window_ms=0,
        )  # fmt: skip
        self.dispatcher.wake()
        return uids

    def state(self, uid: str) -> MessageState:
        record = self.store.get_message(uid)
        assert record is not None
        return record.state

    def detail(self, uid: str) -> str | None:
        record = self.store.get_message(uid)
        assert record is not None
        return record.detail

    async def until(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not reached")

    async def sim(self, behaviour: Behaviour | None = None) -> SmscSimulator:
        sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"},
                            behaviour=behaviour, seed=1)  # fmt: skip
        await sim.start()
        self.sims.append(sim)
        return sim


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    rigs: list[Rig] = []

    async def make(behaviour: Behaviour | None = None, *, with_link: bool = True) -> Rig:
        store = MemoryStore()
        config = ConfigCache(store, poll_s=0.05)
        factory = functools.partial(SmppClient, reconnect_initial_s=0.1, throttle_initial_s=0.05)
        dispatcher = Dispatcher(store, config, client_factory=factory, renew_s=0.2)
        rig = Rig(store, config, dispatcher)
        rig.customer_id = store.add_customer(balance_micros=100 * FEE)
        rig.route = store.add_route("main")
        if with_link:
            sim = await rig.sim(behaviour)
            store.add_connector(connector(sim.port), route=rig.route)
        await asyncio.to_thread(config.refresh)
        await config.start()
        await dispatcher.start()
        rigs.append(rig)
        if with_link:
            await rig.until(lambda: bool(dispatcher.links) and all(
                link.client.available for link in dispatcher.links.values()))  # fmt: skip
        return rig

    yield make
    for rig in rigs:
        await rig.dispatcher.stop()
        await rig.config.stop()
        for sim in rig.sims:
            await sim.stop()


async def test_submit_and_receipt(make_rig: RigFactory) -> None:
    rig = await make_rig()
    uids = rig.accept(3)
    await rig.until(lambda: all(rig.state(u) is MessageState.DELIVERED for u in uids))
    assert len(rig.sims[0].received) == 3
    reports = rig.store.claim_due_reports(now(), 10)
    assert sorted((r.sms_uid, r.result_desc) for r in reports) == [
        (u, "DELIVERED") for u in sorted(uids)
    ]
    record = rig.store.get_message(uids[0])
    assert record is not None and (record.attempts, record.connector_id) == (1, 1)
    assert rig.store.customer_balance(rig.customer_id) == 97 * FEE


async def test_throttled_submits_are_retried_on_the_link(make_rig: RigFactory) -> None:
    rig = await make_rig(Throttling(every_n=2))
    uids = rig.accept(2)
    await rig.until(lambda: all(rig.state(u) is MessageState.DELIVERED for u in uids))
    assert rig.sims[0].submit_count > 2  # some answered "throttled", then sent again
    assert {rig.store.get_message(u).attempts for u in uids} == {1}  # type: ignore[union-attr]


async def test_a_throughput_limit_holds_the_link_back_and_a_timer_sends_the_rest(
    make_rig: RigFactory,
) -> None:
    # 10 segments/s with a burst of one: 12 messages cannot all be out before 1.1 s, and they
    # all go without anything else waking the link (its timer does, between tokens).
    rig = await make_rig(with_link=False)
    sim = await rig.sim()
    rig.store.add_connector(connector(sim.port, throughput=10), route=rig.route)
    await asyncio.to_thread(rig.config.refresh)
    await rig.until(lambda: 1 in rig.dispatcher.links and rig.dispatcher.links[1].client.available)
    started = time.monotonic()
    uids = rig.accept(12)
    await rig.until(lambda: sim.submit_count == 12, seconds=10)
    assert time.monotonic() - started >= 1.0
    await rig.until(lambda: all(rig.state(u) is MessageState.DELIVERED for u in uids))


async def test_permanent_carrier_error_fails_the_message(make_rig: RigFactory) -> None:
    rig = await make_rig(ErrorOnSubmit(status=CommandStatus.ESME_RINVDSTADR))
    [uid] = rig.accept()
    await rig.until(lambda: rig.state(uid) is MessageState.FAILED)
    assert rig.detail(uid) == f"carrier status 0x{CommandStatus.ESME_RINVDSTADR:08X}"
    [report] = rig.store.claim_due_reports(now(), 10)
    assert (report.sms_uid, report.result_desc) == (uid, "UNDELIVERABLE")
    assert rig.store.customer_balance(rig.customer_id) == 99 * FEE  # the carrier refused it


async def test_a_lost_link_gives_the_message_back_and_it_is_sent_again(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(DisconnectMidWindow(after_n=0, hold=1))
    [uid] = rig.accept()
    await rig.until(lambda: rig.state(uid) is MessageState.DELIVERED, seconds=15)
    record = rig.store.get_message(uid)
    assert record is not None and record.attempts == 2
    assert rig.sims[0].submit_count == 2


async def test_an_unsendable_message_fails_at_once_and_is_refunded(make_rig: RigFactory) -> None:
    rig = await make_rig()
    [uid] = rig.accept(sender="S" * 30)  # over SMPP's 21-octet source_addr
    await rig.until(lambda: rig.state(uid) is MessageState.FAILED)
    detail = rig.detail(uid)
    assert detail is not None and detail.startswith("cannot be sent")
    record = rig.store.get_message(uid)
    assert record is not None and record.attempts == 1
    assert rig.store.customer_balance(rig.customer_id) == 100 * FEE
    assert rig.sims[0].submit_count == 0


async def test_links_follow_the_configuration(make_rig: RigFactory) -> None:
    rig = await make_rig(with_link=False)
    assert rig.dispatcher.links == {}
    sim = await rig.sim()
    rig.store.add_connector(connector(sim.port, cid=7, name="late"), route=rig.route)
    await rig.until(lambda: 7 in rig.dispatcher.links)
    await rig.until(lambda: rig.dispatcher.links[7].client.available)
    [uid] = rig.accept()
    await rig.until(lambda: rig.state(uid) is MessageState.DELIVERED)

    rig.store.add_connector(connector(sim.port, cid=7, name="late", enabled=False))
    await rig.until(lambda: 7 not in rig.dispatcher.links)
    [waiting] = rig.accept()
    await asyncio.sleep(0.3)
    assert rig.state(waiting) is MessageState.ACCEPTED  # no carrier: not even claimed


async def test_messages_claimed_at_acceptance_are_sent_without_a_claim_query(
    make_rig: RigFactory,
) -> None:
    """With the dispatcher as the group-commit writer's intake, a packet accepted while there is
    no backlog is written QUEUED under our claim and handed over in memory (LocalClaim)."""
    rig = await make_rig()
    await rig.until(lambda: rig.dispatcher.local_claim() is not None)  # a claim found no backlog
    writer = GroupCommitWriter(rig.store, replay_window_ms=0)
    writer.intake = rig.dispatcher
    claims: list[int] = []
    original = rig.store.claim_due

    def counting_claim_due(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        claims.append(len(found))
        return found

    rig.store.claim_due = counting_claim_due  # type: ignore[method-assign]
    stamp = now()
    messages = tuple(
        NewMessage(
            sms_uid=f"A{next(_uids):08d}", customer_id=rig.customer_id, serial=1,
            country_code=852, dest_msisdn=f"6200{i:04d}", route_name="main", sender="CloudSMS",
            content="hello", encoding="gsm7", segments=1, priority=0, send_at_ms=stamp,
            customer_body=None, state=MessageState.ACCEPTED, result_desc=None, detail=None,
            fee_micros=FEE, currency="HKD", created_ms=stamp,
        )
        for i in range(3)
    )  # fmt: skip
    try:
        packet = PacketWrite(customer_id=rig.customer_id, packet_key=None, messages=messages,
                             answer=b"{}", created_ms=stamp)  # fmt: skip
        outcome = await writer.write(packet)
        assert [m.sms_uid for m in outcome.claimed] == [m.sms_uid for m in messages]
        uids = [m.sms_uid for m in messages]
        await rig.until(lambda: all(rig.state(u) is MessageState.DELIVERED for u in uids))
        assert sum(claims) == 0  # none of them came through the claim query
        record = rig.store.get_message(uids[0])
        assert record is not None and record.attempts == 1
    finally:
        await writer.close()


def _claimed_for(rig: Any, claimer: int) -> list[OutboundMessage]:
    """Two messages accepted and claimed for ``claimer`` in the accept transaction."""
    stamp = now()
    messages = tuple(
        NewMessage(
            sms_uid=f"R{next(_uids):08d}", customer_id=rig.customer_id, serial=1,
            country_code=852, dest_msisdn=f"6300{next(_uids) % 10_000:04d}",
            route_name="main", sender="CloudSMS", content="hello", encoding="gsm7",
            segments=1, priority=0, send_at_ms=stamp, customer_body=None,
            state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=FEE,
            currency="HKD", created_ms=stamp,
        )
        for _ in range(2)
    )  # fmt: skip
    packet = PacketWrite(customer_id=rig.customer_id, packet_key=None, messages=messages,
                         answer=b"{}", created_ms=stamp)  # fmt: skip
    [outcome] = rig.store.accept_packets([packet], replay_window_ms=0, claim=LocalClaim(claimer, 2))
    assert len(outcome.claimed) == 2
    return list(outcome.claimed)


async def test_the_store_is_claimed_from_when_told_or_on_the_poll_not_per_batch_handed_over(
    make_rig: RigFactory,
) -> None:
    """Messages handed over as they were accepted do not make the dispatcher look in the store
    (an empty claim takes SQLite's write lock from the API); a wake-up does, and so does the
    poll every STORE_POLL_S for what nobody announces."""
    rig = await make_rig()
    mine = rig.dispatcher.recorder.claimer
    assert mine is not None
    claims: list[float] = []
    claim_due = rig.store.claim_due

    def counted(*args: Any, **kwargs: Any) -> Any:
        claims.append(time.monotonic())
        return claim_due(*args, **kwargs)

    rig.store.claim_due = counted  # type: ignore[method-assign]
    started = time.monotonic()
    handed: list[OutboundMessage] = []
    for _ in range(20):
        batch = _claimed_for(rig, mine)
        handed += batch
        rig.dispatcher.take_remote(mine, batch)
        await asyncio.sleep(0.02)
    await rig.until(lambda: all(rig.state(m.sms_uid) is MessageState.DELIVERED for m in handed))
    elapsed = time.monotonic() - started
    assert len(claims) <= elapsed / STORE_POLL_S + 2, (len(claims), elapsed)  # not one per batch
    claims.clear()
    rig.dispatcher.wake()
    await asyncio.sleep(0.1)
    assert len(claims) == 1  # at once, not at the next poll


async def test_messages_another_process_claimed_are_sent_only_under_our_claim(
    make_rig: RigFactory,
) -> None:
    """The two-process layout hands the worker whole messages with the claimer they were
    claimed for: ours are submitted as they come; a predecessor's are left to its recovery."""
    rig = await make_rig()
    mine = rig.dispatcher.recorder.claimer
    assert mine is not None
    ours, theirs = _claimed_for(rig, mine), _claimed_for(rig, mine + 1000)
    rig.dispatcher.take_remote(mine + 1000, theirs)
    rig.dispatcher.take_remote(mine, ours)
    await rig.until(lambda: all(rig.state(m.sms_uid) is MessageState.DELIVERED for m in ours))
    await asyncio.sleep(0.3)
    assert [rig.state(m.sms_uid) for m in theirs] == [MessageState.QUEUED] * 2
    assert rig.dispatcher.remote_received == 4
