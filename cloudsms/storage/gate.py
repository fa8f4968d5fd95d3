"""Where a hot store call runs: in a worker thread, or on the event loop once SQLite is ours.

Why (issue 14, measured with the lock's own timers under ``../shared/anchors``): with the api
and worker processes on one SQLite file, the write lock was busy ~85 % of the time, and held
about twice as long as the CPU work done inside it. A store call on a worker thread gives the
GIL back around every SQLite statement and must win it back from its own busy event loop
before the next one, all the while holding the lock the other process is queued on.

:class:`LoopGate` (SQLite) takes the write lock on the event loop's thread when it is free, and
otherwise waits for it to come free in one helper thread (the event loop keeps serving
meanwhile), then tries again; the call runs on the loop thread itself: nothing else of this
process competes for the GIL, and the lock is held for the call's own work and its disk flush
only (the lock timers measured 0.7-1.2 ms per transaction, against 3-5 ms when a thread held it).
The loop is blocked for the length of one transaction (the work it would have waited for
anyway), not for its disk flush: durable commits made through the gate leave the flush to the
gate, which makes it once the lock is released, in a thread of its own
(``SqliteWriteLock.flush_after_release``). Under the harness's load that flush took ~0.8 ms of
the ~2 ms a transaction held the lock, while the other process waited for the lock. ``run``
returns only after the flush, so a caller still acknowledges only what is on disk;
``run_early`` returns as soon as the lock is released, with the flush to await before
acknowledging, so a group commit can start its next transaction meanwhile.

:class:`ThreadGate` (PostgreSQL, whose calls wait on the network, and any store without a
process-wide write lock) runs the call in a worker thread, as ``asyncio.to_thread`` does.

Both take a callable run once the gate is passed, so a caller can decide *what* to write at the
last moment: the group commit takes every packet queued while it waited for the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from cloudsms.storage.log_flusher import LogFlusher
from cloudsms.storage.write_lock import SqliteWriteLock

T = TypeVar("T")


class Gate(Protocol):
    """Runs a blocking store call for an event-loop caller (see the module docstring)."""

    async def run(self, call: Callable[[], T]) -> T:
        """The call's result, once what it committed is on disk."""
        ...

    async def run_early(self, call: Callable[[], T]) -> tuple[T, asyncio.Future[None]]:
        """The call's result as soon as the store is free for the next call, and a future done
        when what it committed is on disk: await it before acknowledging anything."""
        ...

    def close(self) -> None:
        """Let go of any thread of its own (the platform calls it when it stops)."""
        ...


class ThreadGate:
    """The call runs in a worker thread (``asyncio.to_thread``); its commits are durable."""

    async def run(self, call: Callable[[], T]) -> T:
        return await asyncio.to_thread(call)

    async def run_early(self, call: Callable[[], T]) -> tuple[T, asyncio.Future[None]]:
        result = await asyncio.to_thread(call)
        return result, _done(asyncio.get_running_loop())

    def close(self) -> None:
        pass  # the event loop's default executor is not ours


class LoopGate:
    """The call runs on the event loop's thread, holding SQLite's write lock (the module docstring).

    Example::

        gate = LoopGate(store.write_lock)
        outcomes = await gate.run(lambda: store.accept_packets(batch, replay_window_ms=w))
    """

    def __init__(self, lock: SqliteWriteLock) -> None:
        self._lock = lock
        #: One thread waits for the lock to come free on behalf of this process's event loop.
        self._waiter = ThreadPoolExecutor(1, thread_name_prefix="cloudsms-write-gate")
        #: Flushes the log after transactions, in a thread of its own (storage/log_flusher.py).
        self._flusher = LogFlusher(lambda: lock.flush_log())

    async def run(self, call: Callable[[], T]) -> T:
        result, flushed = await self.run_early(call)
        await flushed
        return result

    async def run_early(self, call: Callable[[], T]) -> tuple[T, asyncio.Future[None]]:
        await self._hold()
        lock, loop = self._lock, asyncio.get_running_loop()
        lock.flush_after_release = True
        try:
            result = call()
        finally:
            unflushed = lock.take_unflushed()
            lock.release()
            # Flushed even when the call failed after a commit: a commit is never left unflushed.
            flushed = self._flusher.request() if unflushed else None
        return result, flushed if flushed is not None else _done(loop)

    async def _hold(self) -> None:
        """Return once the write lock is held for this (the loop's) thread.

        The helper thread only waits until the lock is *free*; the loop then takes it itself.
        Taking it in the helper thread instead (measured) left it held for 3-5 ms per
        transaction while the loop finished whatever it was doing when the lock came free.
        """
        me = threading.get_ident()
        loop = asyncio.get_running_loop()
        while not self._lock.try_acquire_for(me):
            await loop.run_in_executor(self._waiter, self._lock.wait_free)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._waiter.shutdown(wait=False, cancel_futures=True)
        self._flusher.close()  # whoever waits for a flush still gets it


def _done(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    future: asyncio.Future[None] = loop.create_future()
    future.set_result(None)
    return future


def gate_for(lock: object) -> Gate:
    """The gate for a store whose write lock is ``lock`` (``Store.write_lock``)."""
    return LoopGate(lock) if isinstance(lock, SqliteWriteLock) else ThreadGate()
