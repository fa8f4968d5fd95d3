"""Connector ownership across worker processes: leases, balancing, and claims that die with them.

Strategy (theory of operation; ``docs/operations.md`` gives the operator's view):

* **Workers.** Every process that dispatches (role ``worker`` or ``all``) registers a row in
  ``workers`` and renews its lease every ``renew_s`` (1 s) for ``lease_s`` (5 s), judged by the
  database's clock. Its message claims (``messages.claimed_by``) are valid exactly while the
  lease is: ``recover_in_flight`` (every worker runs it every tick) gives the QUEUED messages of
  dead workers back to the queue and never touches a live worker's.
* **Connectors.** Each enabled connector is owned by at most one live worker
  (``connector_leases``); only the owner runs its SMPP link. A worker aims at its fair share,
  ``ceil(connectors / live workers)``: above it, it stops links and releases leases (highest ids
  first; the link is stopped *before* the lease is released, so a carrier never sees two binds of
  one connector from us); below it, it takes free connectors (no owner, or a dead one). So a
  second worker started next to a first gets half the connectors within a couple of seconds, and
  the connectors of a worker killed with ``kill -9`` move to the survivors once its lease runs out
  (≤ ``lease_s`` + ``renew_s``).
* **Self-fencing.** A worker that cannot renew (database away) for ``lease_s`` minus a margin, or
  that finds its lease already run out (it was paused), stops every link at once — others may own
  its connectors by now — and registers again under a new id. Its late outcomes are ignored
  by the store (they carry the old claim), so a zombie cannot overwrite the new claimer's work.
* **Routing view.** The tick also reads which connectors other workers own and whether their
  links can take messages (``available``, renewed with the lease). The dispatcher routes with
  that view and hands messages for a connector owned elsewhere to its owner (see
  ``cloudsms.workers.dispatcher``).

On SQLite (one process) the same code runs: one worker, owning every connector.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Collection, Mapping

from cloudsms.roles import DISPATCHING_ROLES
from cloudsms.storage.interfaces import LeaseStore

log = logging.getLogger("cloudsms.leases")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseKeeper:
    """This process's worker lease and connector leases (blocking calls: run them in a thread).

    The dispatcher calls :meth:`register` once, then :meth:`tick` every ``renew_s``; a tick
    returns the connectors this worker should run links for. :meth:`retire` at a clean stop.
    """

    def __init__(
        self,
        store: LeaseStore,
        *,
        role: str = "all",
        lease_s: float = 5.0,
        renew_s: float = 1.0,
    ) -> None:
        if lease_s < 2 * renew_s:
            raise ValueError("lease_s must be at least twice renew_s")
        self.store = store
        self.role = role
        self.lease_ms = int(lease_s * 1000)
        self.renew_s = renew_s
        self.host = socket.gethostname()[:64]
        self.name = f"{self.host}:{os.getpid()}"
        #: This process's id in ``workers`` (the claimer of its messages); None before register.
        self.worker_id: int | None = None
        #: Connectors this worker owns (its links run for these).
        self.owned: frozenset[int] = frozenset()
        #: Connectors owned by other live workers whose links take messages now.
        self.available_elsewhere: frozenset[int] = frozenset()
        #: Live dispatching workers other than this one at the last tick.
        self.others = 0
        #: Database time of the last tick (its lease runs until this + lease_ms).
        self.lease_until_ms = 0
        #: Messages recovered from dead workers by this process.
        self.recovered = 0
        self._last_renewal = 0.0
        self._ticks = 0

    # -- lifecycle (blocking) ---------------------------------------------------------------

    def register(self) -> int:
        """A new worker row; first ends the leases of dead processes of this host (by pid)."""
        dead = [
            w.id
            for w in self.store.list_workers(live_only=True)
            if w.host == self.host and w.pid != os.getpid() and not pid_alive(w.pid)
        ]
        if dead:
            self.store.expire_workers(dead)
            log.warning("workers %s of this host are gone (pid not running): leases ended", dead)
        self.worker_id = self.store.register_worker(
            name=self.name, host=self.host, pid=os.getpid(), role=self.role, lease_ms=self.lease_ms
        )
        self.owned = frozenset()
        self._last_renewal = time.monotonic()
        log.info("registered as worker %d (%s)", self.worker_id, self.name)
        return self.worker_id

    def retire(self) -> None:
        if self.worker_id is not None:
            self.store.retire_worker(self.worker_id)
            self.owned = frozenset()

    # -- the tick (blocking) ----------------------------------------------------------------

    def renew(self, available: Mapping[int, bool]) -> bool:
        """Renew; False when the lease is lost (ran out, or cannot be renewed in time)."""
        assert self.worker_id is not None
        try:
            ok = self.store.renew_leases(
                self.worker_id, self.lease_ms, {c: available.get(c, False) for c in self.owned}
            )
        except Exception:
            # The database is away. Until our lease would have run out we keep our links (a
            # short database restart must not drop every carrier bind); after, we must not.
            if time.monotonic() - self._last_renewal < (self.lease_ms / 1000) * 0.8:
                log.warning("could not renew leases; retrying", exc_info=True)
                return True
            log.error("leases not renewed for %.1f s: giving up connectors", self.lease_ms / 1000)
            return False
        if ok:
            self._last_renewal = time.monotonic()
        else:
            log.error("worker %s lease had run out (process paused?): fencing", self.worker_id)
        return ok

    def balance(self, enabled: Collection[int]) -> tuple[frozenset[int], frozenset[int]]:
        """Read the view; return (connectors to keep or take, connectors to give up).

        The caller stops the links of the second set, then calls :meth:`release` with it.
        """
        assert self.worker_id is not None
        me = self.worker_id
        view = self.store.lease_view()
        self.lease_until_ms = view.now_ms + self.lease_ms
        workers = [w for w in view.workers if w.role in DISPATCHING_ROLES]
        self.others = sum(1 for w in workers if w.id != me)
        enabled = frozenset(enabled)
        mine = frozenset(c for c, lease in view.leases.items() if lease.owner == me) & enabled
        elsewhere = {c: lease for c, lease in view.leases.items() if lease.owner != me}
        self.available_elsewhere = frozenset(
            c for c, lease in elsewhere.items() if lease.available and c in enabled
        )
        fair = math.ceil(len(enabled) / max(1, self.others + 1))
        give_up: frozenset[int] = frozenset()
        keep = mine
        if len(mine) > fair:
            give_up = frozenset(sorted(mine)[fair:])
            keep = mine - give_up
        elif len(mine) < fair:
            free = sorted(enabled - mine - set(elsewhere))
            if free:
                taken = self.store.acquire_connectors(
                    me, free, self.lease_ms, limit=fair - len(mine)
                )
                if taken:
                    log.info("worker %d took connectors %s", me, taken)
                keep = mine | frozenset(taken)
        self.owned = keep | give_up  # until released
        self._ticks += 1
        if self._ticks % 10 == 1 or self.others:
            recovered = self.store.recover_in_flight()
            if recovered:
                self.recovered += recovered
                log.warning("%d messages of dead workers given back to the queue", recovered)
            reports = self.store.recover_claimed_reports(time.time_ns() // 1_000_000)
            if reports:
                log.warning("%d reports claimed by dead workers are due again", reports)
        if self._ticks % 3600 == 0:
            self.store.prune_workers(older_than_ms=3_600_000)
        return keep, give_up

    def release(self, connector_ids: Collection[int]) -> None:
        assert self.worker_id is not None
        if connector_ids:
            self.store.release_connectors(self.worker_id, connector_ids)
            self.owned = self.owned - frozenset(connector_ids)
            log.info("worker %d gave up connectors %s", self.worker_id, sorted(connector_ids))


__all__ = ["LeaseKeeper", "LeaseStore", "pid_alive"]
