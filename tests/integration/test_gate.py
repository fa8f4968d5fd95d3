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

from test_write_lock import start_holder
from test_writer import make_packet

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
