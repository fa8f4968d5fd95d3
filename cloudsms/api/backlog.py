"""Backlog gauge: how many accepted messages wait for a carrier, per customer and in all.

Strategy: the authoritative count lives in the store (messages in ACCEPTED or QUEUED). Counting
per request would cost a query each, so the gauge re-reads the counts every ``refresh_s`` seconds
in a worker thread and adds what this process accepted since. Limits are therefore enforced
within a refresh interval's worth of traffic — enough to stop a runaway sender, cheap enough for
the hot path (SPEC: Queue_too_large).
"""

from __future__ import annotations

from collections import Counter

from cloudsms.periodic import Periodic
from cloudsms.storage.interfaces import BacklogSource


class BacklogGauge:
    def __init__(self, source: BacklogSource, *, refresh_s: float = 1.0) -> None:
        self._source = source
        self._stored: dict[int, int] = {}
        self._stored_total = 0
        self._since: Counter[int] = Counter()
        self._since_total = 0
        # Messages accepted between a read and its swap are counted twice for one interval.
        self._periodic = Periodic(self.refresh, refresh_s, "backlog-refresh")

    def customer(self, customer_id: int) -> int:
        return self._stored.get(customer_id, 0) + self._since[customer_id]

    def total(self) -> int:
        return self._stored_total + self._since_total

    def added(self, customer_id: int, count: int) -> None:
        self._since[customer_id] += count
        self._since_total += count

    def refresh(self) -> None:
        counts = self._source.backlog_by_customer()
        self._stored, self._stored_total = counts, sum(counts.values())
        self._since.clear()
        self._since_total = 0

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
