"""The sweep of inbound-message parts that never completed (``mo_parts_ttl_s``).

A long MO's parts wait in ``inbound_parts`` until every part is there (``storage.inbound_ops``).
A carrier that never delivers one of them — lost on its side, or given up after its retries —
would leave the others there for ever. Every few minutes the worker deletes the parts of
messages whose newest part is older than the TTL (a message's parts go together: deleting the
oldest alone would leave the rest unable to complete), logs how many and counts them
(``cloudsms_mo_parts_dropped_total``). Runs in the processes that dispatch, where the intake is.

    sweeper = MoPartsSweeper(store, ttl_s=4 * 3600)
    await sweeper.start()   # sweeps once now, then every interval_s
    ...
    await sweeper.stop()
"""

from __future__ import annotations

import logging
import time

from cloudsms import metrics
from cloudsms.periodic import Periodic
from cloudsms.storage.interfaces import InboundSink

log = logging.getLogger("cloudsms.inbound")


class MoPartsSweeper:
    """Deletes stale parts of incomplete MOs every ``interval_s`` (see the module docstring)."""

    def __init__(self, store: InboundSink, ttl_s: float, interval_s: float | None = None) -> None:
        self.store = store
        self.ttl_ms = int(ttl_s * 1000)
        #: A tenth of the TTL, between 1 s and 5 min: a part outlives it by that at most.
        self.interval_s = interval_s if interval_s is not None else min(300.0, max(1.0, ttl_s / 10))
        #: Parts deleted by this process so far.
        self.dropped = 0
        self._periodic = Periodic(self.sweep, self.interval_s, "mo-parts-sweep")

    def sweep(self) -> int:
        """Delete the stale parts now (blocking: the periodic task runs it in a thread)."""
        n = self.store.drop_stale_inbound_parts(time.time_ns() // 1_000_000 - self.ttl_ms)
        if n:
            self.dropped += n
            metrics.mo_parts_dropped(n)
            log.warning(
                "dropped %d parts of inbound messages that never completed within %d s",
                n, self.ttl_ms // 1000,
            )  # fmt: skip
        return n

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
