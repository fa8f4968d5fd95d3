"""Where hot store calls run (cloudsms.storage.gate), on a real SQLite file and its lock file.

The loop gate runs a call on the event loop's thread holding the write lock; while another
process holds the lock the loop keeps running other tasks; a caller cancelled while it waits does
not leave the lock taken; and the group-commit writer batches through it as through a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_write_lock import start_holder
from test_writer import make_packet, until

from cloudsms.domain.pipeline import LocalClaim, OutboundMessage
from cloudsms.exceptions import StoreError
from cloudsms.storage.gate import LoopGate, ThreadGate, gate_for
from cloudsms.storage.store import Store
from cloudsms.storage.write_lock import SqliteWriteLock, lock_path
from cloudsms.storage.writer import GroupCommitWriter

WINDOW = 86_400_000
#: tests/conftest.py's add_customer fixture (imported by name it would clash with admin's conftest).
CustomerFactory = Callable[..., int]


def test_gate_for_picks_the_loop_gate_only_with_a_sqlite_lock(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        assert isinstance(gate_for(store.write_lock), LoopGate)
    finally:
        store.close()
    assert isinstance(gate_for(None), ThreadGate)


async def test_the_call_runs_on_the_loop_thread_holding_the_lock(tmp_path: Path) -> None:
    lock = SqliteWriteLock(str(tmp_path / "db-writelock"))
    gate = LoopGate(lock)
    seen: list[tuple[int, bool]] = []

    def call() -> str:
        # Re-entrant for the holder, refused to any other thread.
        with lock:
            pass
        other = threading.Thread(target=lambda: seen.append((0, lock.try_acquire_for(1))))
        other.start()
        other.join()
        seen.append((threading.get_ident(), True))
        return "done"

    assert await gate.run(call) == "done"
    assert seen == [(0, False), (threading.get_ident(), True)]
    assert lock.try_acquire_for(7)  # released after the call
    lock.release()
    gate.close()


async def test_the_loop_keeps_running_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = lock_path(str(tmp_path / "x.db"))
    assert path is not None
    holder = start_holder(path, 0.6)
    gate = LoopGate(SqliteWriteLock(path))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    start = time.monotonic()
    ran_at = await gate.run(time.monotonic)
    ticking.cancel()
    holder.wait(5)
    assert ran_at - start > 0.4  # it waited for the other process
    assert ticks > 20  # and the loop was free meanwhile
    gate.close()


async def test_a_caller_cancelled_while_waiting_leaves_the_lock_free(tmp_path: Path) -> None:
    path = lock_path(str(tmp_path / "c.db"))
    assert path is not None
    holder = start_holder(path, 0.5)
    lock = SqliteWriteLock(path)
    gate = LoopGate(lock)
    waiting = asyncio.create_task(gate.run(lambda: "never"))
    await asyncio.sleep(0.1)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    holder.wait(5)
    # Nothing is left holding the lock after a cancelled wait.
    for _ in range(200):
        if lock.try_acquire_for(9):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the lock stayed taken after the cancelled wait")
    lock.release()
    gate.close()


async def test_the_writer_batches_through_the_store_gate(
    store: Store, add_customer: CustomerFactory
) -> None:
    """SQLite: the loop gate; PostgreSQL: the thread gate. Same batching, same outcome."""
    cid = add_customer(balance_micros=10**9)
    gate = gate_for(store.write_lock)
    assert isinstance(gate, LoopGate if store.dialect == "sqlite" else ThreadGate)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW, max_batch=64, gate=gate)
    packets = [make_packet(cid, fee=1_001) for _ in range(300)]
    outcomes = await asyncio.gather(*(writer.write(p) for p in packets))
    await writer.close()
    assert [o.answer for o in outcomes] == [p.answer for p in packets]
    stats = writer.stats()
    assert stats.packets_committed == 300 and 1 < stats.batches < 300
    assert store.count_messages() == 300
    assert store.customer_balance(cid) == 10**9 - 300 * 1_001


class HeldFlush:
    """Replaces a lock's ``flush_log``: notes whether the write lock was free at each flush and
    holds the flush until the test lets it go (then flushes for real)."""

    def __init__(self, lock: SqliteWriteLock) -> None:
        self.lock = lock
        self.real = lock.flush_log
        self.go = threading.Event()
        self.lock_free: list[bool] = []
        self.error: StoreError | None = None
        lock.flush_log = self  # type: ignore[method-assign]

    def __call__(self) -> None:
        free = self.lock.try_acquire_for(-1)
        if free:
            self.lock.release()
        self.lock_free.append(free)
        assert self.go.wait(10), "the test never let the flush go"
        if self.error is not None:
            raise self.error
        self.real()


def synchronous_setting(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def sqlite_only(
    store: Store, add_customer: CustomerFactory, why: str
) -> tuple[int, SqliteWriteLock]:
    """A customer with money and the store's write lock; skips on PostgreSQL (``why``)."""
    if store.dialect != "sqlite":
        pytest.skip(why)
    lock = store.write_lock
    assert isinstance(lock, SqliteWriteLock)
    return add_customer(balance_micros=10**9), lock


async def test_callers_are_answered_once_their_commit_is_flushed_after_the_lock(
    store: Store, add_customer: CustomerFactory
) -> None:
    """SQLite: the commit is written under the lock, flushed to disk after it is released, and
    only then answered; the next batch commits meanwhile. PostgreSQL: commits are durable."""
    cid = add_customer(balance_micros=10**9)
    gate = gate_for(store.write_lock)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW, gate=gate)
    if store.dialect != "sqlite":
        result, flushed = await gate.run_early(lambda: 7)
        assert result == 7 and flushed.done()
        assert (await writer.write(make_packet(cid))).answer
        return
    lock = store.write_lock
    assert isinstance(lock, SqliteWriteLock) and isinstance(gate, LoopGate)
    flush = HeldFlush(lock)
    first = asyncio.create_task(writer.write(make_packet(cid)))
    await until(lambda: len(flush.lock_free) == 1)
    assert store.count_messages() == 1  # committed and visible, not yet flushed
    second = asyncio.create_task(writer.write(make_packet(cid)))
    await until(lambda: store.count_messages() == 2)  # the store was free during the flush
    await asyncio.sleep(0.05)
    assert not first.done() and not second.done()  # nobody told OK before the flush
    flush.go.set()
    outcomes = await asyncio.gather(first, second)
    assert all(o.answer for o in outcomes)
    assert flush.lock_free == [True, True]  # each flush ran with the lock released
    assert synchronous_setting(store) == 2  # FULL again for every other transaction
    await writer.close()
    gate.close()


async def test_a_commit_that_cannot_be_flushed_is_not_acknowledged(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid, lock = sqlite_only(store, add_customer, "PostgreSQL's commit is durable: no flush of ours")
    gate = LoopGate(lock)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW, gate=gate)
    flush = HeldFlush(lock)
    flush.error = StoreError("could not flush the database log: EIO")
    flush.go.set()
    with pytest.raises(StoreError, match="EIO"):
        await writer.write(make_packet(cid))
    assert writer.stats().packets_failed == 1
    await writer.close()
    gate.close()


async def test_a_durable_write_outside_the_gate_is_flushed_by_sqlite_itself(
    store: Store, add_customer: CustomerFactory
) -> None:
    """The CLI, operator changes, a writer closing without its loop: no deferred flush."""
    cid, lock = sqlite_only(store, add_customer, "SQLite's synchronous setting")
    seen: list[int] = []
    with store._write_transaction() as conn:
        seen.append(int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one()))
    lock.flush_after_release = True
    with lock, store._write_transaction() as conn:
        seen.append(int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one()))
    assert lock.take_unflushed() is True
    assert seen == [2, 1]  # FULL outside the gate, NORMAL (flushed later) inside it
    assert store.accept_packets([make_packet(cid)], replay_window_ms=WINDOW)[0].answer
    assert lock.take_unflushed() is False


class RoomyIntake:
    """A dispatcher as the writer sees it: room for ``room`` messages; keeps what it is given."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.taken: list[OutboundMessage] = []

    def local_claim(self) -> LocalClaim:
        return LocalClaim(claimer=7, limit=self.room)

    def take_claimed(self, messages: list[OutboundMessage]) -> None:
        self.taken.extend(messages)


def states(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT state, COUNT(*) FROM messages GROUP BY state")
        return {state: int(n) for state, n in rows}


async def test_a_claim_leaves_room_for_what_a_commit_still_flushing_claimed(
    store: Store, add_customer: CustomerFactory
) -> None:
    """The next batch commits while the previous one is flushed; the messages that one claimed
    are not handed to the dispatcher yet, so the next claim must not count on their room."""
    cid, lock = sqlite_only(store, add_customer, "the flush after the lock is SQLite's")
    gate = LoopGate(lock)
    writer = GroupCommitWriter(store, replay_window_ms=WINDOW, gate=gate)
    intake = writer.intake = RoomyIntake(room=3)
    flush = HeldFlush(lock)
    first = [asyncio.create_task(writer.write(make_packet(cid))) for _ in range(3)]
    await until(lambda: len(flush.lock_free) == 1)
    assert states(store) == {"queued": 3}
    second = asyncio.create_task(writer.write(make_packet(cid)))
    await until(lambda: store.count_messages() == 4)
    assert states(store) == {"queued": 3, "accepted": 1}  # no room left for it
    flush.go.set()
    await asyncio.gather(*first, second)
    assert len(intake.taken) == 3
    await writer.write(make_packet(cid))  # handed over: the room is counted again
    assert states(store) == {"queued": 4, "accepted": 1} and len(intake.taken) == 4
    await writer.close()
    gate.close()
