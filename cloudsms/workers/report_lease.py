"""The worker lease of a process that only pushes reports (role ``reports``).

A report claim carries the claiming worker's id (``report_outbox.claimed_by``) so that, when that
worker dies, the others take its claimed reports at once instead of after ``report_lease_s``.
A dispatching worker gets its id from its connector leases (``cloudsms.workers.leases``); a
reports-only process registers the same way, under role ``reports``, which dispatching workers
do not count when they share out the connectors. Every ``renew_s`` it renews its lease and makes
the reports of dead workers due again; a lease that ran out (the process was paused) means its
old claims may be anybody's now, so it registers again under a new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from cloudsms.periodic import Periodic
from cloudsms.storage.interfaces import LeaseStore
from cloudsms.workers.leases import LeaseKeeper

log = logging.getLogger("cloudsms.leases")


class ReportsLease:
    def __init__(self, store: LeaseStore, *, lease_s: float = 5.0, renew_s: float = 1.0) -> None:
        self.keeper = LeaseKeeper(store, role="reports", lease_s=lease_s, renew_s=renew_s)
        self._periodic = Periodic(self.tick, renew_s, "reports-lease")

    @property
    def claimer(self) -> int | None:
        """The id this process's report claims carry (None while it is not registered)."""
        return self.keeper.worker_id

    async def start(self) -> None:
        """Register (the first tick), then tick every ``renew_s``."""
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.keeper.retire)

    def tick(self) -> None:
        """Renew (or register again after losing the lease); recover dead workers' reports."""
        if self.keeper.worker_id is None or not self.keeper.renew({}):
            self.keeper.worker_id = None  # claims under the old id are no longer ours
            self.keeper.register()
        due = self.keeper.store.recover_claimed_reports(time.time_ns() // 1_000_000)
        if due:
            log.warning("%d reports claimed by dead workers are due again", due)
