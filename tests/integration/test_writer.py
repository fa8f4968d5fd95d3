"""The group-commit writer on real databases: many callers, few transactions, no one left hanging.

``Gate`` holds the writer thread inside its first transaction so the tests can pile packets up
behind it and know exactly which packets share the next batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import NewMessage, PacketOutcome, PacketWrite
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import StoreError
from cloudsms.storage.messages import BatchRejected
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter, WriterClosed

CustomerFactory = Callable[..., int]
WINDOW = 60_000
T0 = 1_764_000_000_000
UIDS = UidGenerator()
#: Breaks the database under the store (other tables may reference messages).
DROP_MESSAGES = {"sqlite": "DROP TABLE messages", "postgresql": "DROP TABLE messages CASCADE"}


def make_packet(
    cid: int, *, fee: int = 1_000, sms_uid: str | None = None, key: str | None = None
) -> PacketWrite:
    uid = sms_uid or UIDS.next_uid()
    msg = NewMessage(
        sms_uid=uid,
        customer_id=cid,
        serial=1,
        country_code=852,
        dest_msisdn="91234567",
        route_name="r",
        sender="S",
        content="hi",
        encoding="gsm7",
        segments=1,
        priority=0,
        send_at_ms=T0,
        customer_body=None,
        state=MessageState.ACCEPTED,
        result_desc=None,
        detail=None,
        fee_micros=fee,
        currency="HKD",
        created_ms=T0,
    )
    return PacketWrite(
        customer_id=cid,
        packet_key=key or f"key-{uid}",
        messages=(msg,),
        answer=uid.encode(),
        created_ms=T0,
    )


class Gate:
    """A store wrapper whose first ``accept_packets`` waits until the test opens the gate."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls: list[int] = []

    def accept_packets(
        self, writes: Sequence[PacketWrite], *, replay_window_ms: int, claim: Any = None
    ) -> list[PacketOutcome]:
        self.calls.append(len(writes))
        self.entered.set()
        assert self.opened.wait(30), "gate never opened"
        return self.store.accept_packets(writes, replay_window_ms=replay_window_ms, claim=claim)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(2_000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def hold_first_batch(
    gate: Gate, writer: GroupCommitWriter, first: PacketWrite
) -> asyncio.Task[PacketOutcome]:
    """Start ``first`` and wait until the writer thread is stuck inside its transaction."""
    task = asyncio.create_task(writer.write(first))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    return task


async def test_many_concurrent_writes_share_transactions(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=10**9)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW, max_batch=64)
    writer.start()
    writer.start()  # idempotent
    packets = [make_packet(cid, fee=1_001) for _ in range(500)]

    outcomes = await asyncio.gather(*(writer.write(p) for p in packets))
    await writer.close()

    assert [o.answer for o in outcomes] == [p.answer for p in packets]
    assert not any(o.replayed for o in outcomes)
    stats = writer.stats()
    assert stats.packets_committed == 500 and stats.packets_failed == 0
    assert 1 < stats.batches < 500  # group commit happened
    assert stats.transactions == stats.batches
    assert 1 < stats.largest_batch <= 64
    assert store.count_messages() == 500
    assert store.customer_balance(cid) == 10**9 - 500 * 1_001
    assert writer.pending() == 0


async def test_loop_stays_free_and_pending_counts_queued(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=10**9)
    gate = Gate(store)
    writer = GroupCommitWriter(gate, replay_window_ms=WINDOW)
    first = await hold_first_batch(gate, writer, make_packet(cid))

    # The thread is blocked in the database call, yet the loop keeps running.
    await asyncio.sleep(0.01)
    rest = [asyncio.create_task(writer.write(make_packet(cid))) for _ in range(20)]
    await until(lambda: writer.pending() == 21)
    gate.opened.set()
    await asyncio.gather(first, *rest)

    assert gate.calls == [1, 20]  # everything that piled up went in one transaction
    assert writer.pending() == 0
    await writer.close()


async def test_failure_reaches_every_caller_of_the_batch(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=10**9)
    gate = Gate(store)
    writer = GroupCommitWriter(gate, replay_window_ms=WINDOW)
    first = await hold_first_batch(gate, writer, make_packet(cid))
    rest = [asyncio.create_task(writer.write(make_packet(cid))) for _ in range(30)]
    await until(lambda: writer.pending() == 31)
    with store.engine.begin() as conn:  # the database breaks under the writer
        conn.exec_driver_sql(DROP_MESSAGES[store.dialect])
    gate.opened.set()

    results = await asyncio.gather(first, *rest, return_exceptions=True)

    assert all(isinstance(r, StoreError) and not isinstance(r, BatchRejected) for r in results)
    assert len({id(r) for r in results}) == 31  # one exception object per caller
    assert all(r.__cause__ is not None for r in results if isinstance(r, BaseException))
    # A database failure is not retried packet by packet: two transactions for 31 packets.
    assert gate.calls == [1, 30]
    stats = writer.stats()
    assert (stats.packets_failed, stats.packets_committed, stats.batches_split) == (31, 0, 0)
    assert store.customer_balance(cid) == 10**9
    await writer.close()


async def test_poison_packet_fails_alone(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**9)
    existing = make_packet(cid)
    store.accept_packets([existing], replay_window_ms=WINDOW)
    gate = Gate(store)
    writer = GroupCommitWriter(gate, replay_window_ms=WINDOW)
    first = await hold_first_batch(gate, writer, make_packet(cid))
    good = [make_packet(cid, fee=7) for _ in range(10)]
    # Another packet (its own key) reusing a stored SMS_UID: the primary key refuses it.
    poison = make_packet(cid, sms_uid=existing.messages[0].sms_uid, key="poison")
    batch = [*good[:5], poison, *good[5:]]
    tasks = [asyncio.create_task(writer.write(p)) for p in batch]
    await until(lambda: writer.pending() == 12)
    gate.opened.set()

    await first
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[5], BatchRejected)
    assert [r.answer for r in results if isinstance(r, PacketOutcome)] == [p.answer for p in good]
    assert gate.calls == [1, 11, *[1] * 11]  # the batch, then each packet alone
    stats = writer.stats()
    assert (stats.batches_split, stats.packets_failed, stats.packets_committed) == (1, 1, 11)
    assert store.count_messages() == 12
    assert store.customer_balance(cid) == 10**9 - 2 * 1_000 - 10 * 7
    await writer.close()


async def test_close_drains_then_refuses(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**9)
    gate = Gate(store)
    writer = GroupCommitWriter(gate, replay_window_ms=WINDOW, max_batch=4)
    first = await hold_first_batch(gate, writer, make_packet(cid))
    queued = [asyncio.create_task(writer.write(make_packet(cid))) for _ in range(10)]
    await until(lambda: writer.pending() == 11)

    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.01)
    with pytest.raises(WriterClosed):
        await writer.write(make_packet(cid))
    gate.opened.set()
    await closing

    outcomes = await asyncio.gather(first, *queued)
    assert len(outcomes) == 11 and not any(o.replayed for o in outcomes)
    assert gate.calls == [1, 4, 4, 2]  # max_batch respected while draining
    assert store.count_messages() == 11
    with pytest.raises(WriterClosed):
        writer.start()
    await writer.close()  # idempotent


def test_close_sync_without_a_loop(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**9)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW)
    writer.close_sync()  # never started: nothing to do
    with pytest.raises(WriterClosed):
        asyncio.run(writer.write(make_packet(cid)))

    writer = GroupCommitWriter(store, replay_window_ms=WINDOW)
    outcome = asyncio.run(writer.write(make_packet(cid)))  # write() starts the thread itself
    writer.close_sync()
    assert not outcome.replayed
    assert store.count_messages() == 1


async def test_replay_through_the_writer(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**9)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW)
    p = make_packet(cid)
    o1, o2 = await asyncio.gather(writer.write(p), writer.write(p))
    o3 = await writer.write(p)
    await writer.close()
    assert sorted([o1.replayed, o2.replayed]) == [False, True] and o3.replayed
    assert o1.answer == o2.answer == o3.answer == p.answer
    assert store.count_messages() == 1


async def test_same_packet_racing_from_another_process_is_replayed(
    store: Store, add_customer: CustomerFactory
) -> None:
    """PostgreSQL: another process stores the same packet while ours is in flight; ours must get
    that packet's ANSWER (a replay), not an error, and nothing is stored twice."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite takes the write lock before the replay lookup: no such race")
    from sqlalchemy import text

    cid = add_customer(balance_micros=10**9)
    p = make_packet(cid)
    other = store.engine.connect()  # "the other process": its insert is not committed yet
    other.begin()
    other.execute(
        text("INSERT INTO replays (packet_key, customer_id, answer, created_ms) "
             "VALUES (:k, :c, :a, :t)"),
        {"k": p.packet_key, "c": cid, "a": b"the other answer", "t": T0},
    )  # fmt: skip
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW)
    pending = asyncio.ensure_future(writer.write(p))
    await asyncio.sleep(0.5)  # ours has looked up the key (not there yet) and now waits on it
    assert not pending.done()
    other.commit()
    other.close()
    outcome = await asyncio.wait_for(pending, 10)
    await writer.close()
    assert outcome.replayed and outcome.answer == b"the other answer"
    assert store.count_messages() == 0
