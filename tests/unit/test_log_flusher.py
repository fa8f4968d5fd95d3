"""The log flusher (cloudsms.storage.log_flusher): one thread, one flush shared by the commits
that queued while the previous flush ran, errors handed to every waiter.

The flush here is a callable the test controls (the real one is an ``fdatasync``, tested with a
real SQLite file in tests/integration/test_gate.py).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from cloudsms.exceptions import StoreError
from cloudsms.storage.log_flusher import LogFlusher


class ControlledFlush:
    """Counts flushes; each waits until the test lets one go."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.go = threading.Semaphore(0)
        self.count = 0
        self.error: BaseException | None = None

    def __call__(self) -> None:
        self.count += 1
        self.started.release()
        assert self.go.acquire(timeout=10), "the test never let the flush go"
        if self.error is not None:
            raise self.error


async def started(flush: ControlledFlush) -> None:
    assert await asyncio.to_thread(flush.started.acquire, True, 10)


async def test_requests_made_during_a_flush_share_the_next_one() -> None:
    flush = ControlledFlush()
    flusher = LogFlusher(flush)
    first = flusher.request()
    await started(flush)  # the first flush runs (and waits)
    later = [flusher.request() for _ in range(5)]  # made after it started: not covered by it
    await asyncio.sleep(0.02)
    assert not first.done() and not any(f.done() for f in later)
    flush.go.release()
    await first
    assert not any(f.done() for f in later)  # they need a flush that starts after them
    await started(flush)
    flush.go.release()
    await asyncio.gather(*later)
    assert flush.count == 2  # five commits, one flush
    flusher.close()


async def test_a_failed_flush_fails_every_request_it_was_for() -> None:
    flush = ControlledFlush()
    flusher = LogFlusher(flush)
    first = flusher.request()
    await started(flush)  # flush 1 runs; the three below are made during it, so share flush 2
    futures = [flusher.request() for _ in range(3)]
    flush.go.release()
    await first
    await started(flush)  # flush 2, for the three
    flush.error = StoreError("could not flush the database log: EIO")
    flush.go.release()
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert flush.count == 2
    assert all(isinstance(r, StoreError) and "EIO" in str(r) for r in results)
    flush.error = None
    again = flusher.request()  # the thread lives on
    flush.go.release()
    await again
    flusher.close()


async def test_close_flushes_for_whoever_waits_then_refuses() -> None:
    flush = ControlledFlush()
    flusher = LogFlusher(flush)
    waiting = flusher.request()
    await started(flush)
    flush.go.release()
    await asyncio.to_thread(flusher.close)
    await waiting
    with pytest.raises(RuntimeError, match="closed"):
        flusher.request()
