"""The expiry job: SUBMITTED messages without a final receipt after 25 hours become EXPIRED.

Document, section 平台短信状态报告推送: "若CloudSMS在超过25小时后仍未收到落地运营商返回的DR报告，
CloudSMS将认为该短信为超时状态，并回复 EXPIRED 状态的DR回执" (SPEC §5). The store does the work
in one transaction per batch (state change + report row, ``ExpiryOps.expire_overdue``); this
worker only calls it periodically and nudges the pusher. A receipt arriving later is recorded by
the dispatcher but cannot change the final state, and the outbox refuses a second final report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from cloudsms.storage.interfaces import ExpiryStore

log = logging.getLogger("cloudsms.expiry")


class Wakeable(Protocol):
    def wake(self) -> None: ...


class ExpiryWorker:
    """Every ``interval_s``: expire overdue messages in batches of ``batch``, then wake the pusher.

    Example::

        expiry = ExpiryWorker(store, expire_after_s=25 * 3600, interval_s=60, pusher=pusher)
        await expiry.start()
        ...
        await expiry.stop()
    """

    def __init__(
        self,
        store: ExpiryStore,
        expire_after_s: float = 25 * 3600.0,
        interval_s: float = 60.0,
        *,
        pusher: Wakeable | None = None,
        batch: int = 1000,
    ) -> None:
        self.store = store
        self.expire_after_ms = int(expire_after_s * 1000)
        self.interval_s = interval_s
        self.pusher = pusher
        self.batch = batch
        #: Messages expired by this worker so far.
        self.expired = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="expiry")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> int:
        """Expire everything overdue now (batch after batch); return how many expired."""
        total = 0
        while True:
            now = time.time_ns() // 1_000_000
            n = await asyncio.to_thread(
                self.store.expire_overdue, now, self.expire_after_ms, limit=self.batch
            )
            total += n
            if n < self.batch or self._stop.is_set():
                break
        if total:
            self.expired += total
            log.info("expired %d messages without a final receipt", total)
            if self.pusher is not None:
                self.pusher.wake()
        return total

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("expiring overdue messages failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
