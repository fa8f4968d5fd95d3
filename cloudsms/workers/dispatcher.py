"""The dispatcher: accepted messages out to carriers, carrier receipts back in (SPEC §5).

Strategy:

* **Links.** One ``Link`` (``workers/link.py``) per enabled connector: an ``SmppClient``
  (window, throughput, keepalive, reconnect are the client's job) and a bounded queue that the
  link sends from as the window allows, without a task per message.
  Links follow the configuration: a connector added, changed, disabled or removed by an
  operator is started, restarted or stopped within a
  second (``ConfigCache`` notifies).
* **Ownership.** Only the connectors this process owns get links (``cloudsms.workers.leases``:
  one owner per connector among the live worker processes, fair share, moved within seconds
  when an owner dies). With one process (SQLite, or one worker on PostgreSQL) it owns them all.
* **Feeding.** One task claims due messages (state ACCEPTED, ``send_at`` reached, PRIORITY 1
  first) in batches no larger than the free queue space of our links that are up, routes each
  through the ``RoutingTable`` (longest prefix, priority, weighted share, failover) and puts it on
  its link's queue. Routing sees every live connector: ours (our links' state) and those of other
  workers (their ``available`` flag, renewed every second). A message routed to a connector owned
  elsewhere is *handed off*: back to ACCEPTED with ``via_connector`` set, and that owner claims it
  (``claim_handed_off``, before its own routing claims); so priority, failover and weighted shares
  hold across processes, at the cost of one more write for hand-offs. Hand-offs to a connector
  that is no longer live are routed again by anyone. The API calls :meth:`Dispatcher.wake` (in
  one process) or sends a ``NOTIFY`` (across processes) after each accepted packet, so a new
  message is claimed at once instead of at the next poll; a link calls it too when its
  queue falls to half, so a busy link is refilled before it runs dry.
* **Claims.** Each claim records this worker's id (``messages.claimed_by``); only this worker's
  outcomes apply to its claims, and if it dies its claims are recovered by the others.
* **Claimed at acceptance.** In a process that also runs the API, the group-commit writer asks
  :meth:`Dispatcher.local_claim` before each transaction and writes the messages it accepts that
  are due now QUEUED under this worker's id, then hands them over (:meth:`take_claimed`): one
  write and no claim query per message. It does so only while the store has no backlog of due
  messages (the last claim found fewer than it asked for), so older messages are not overtaken,
  and only for the room our links have; the rest are written ACCEPTED and claimed as above.
* **Outcomes.** Every submit outcome and every receipt goes through the ``DispatchRecorder``
  (ordered group commit). A receipt is acknowledged to the carrier only once stored.
* **Retries.** Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) are retried on the link after
  the client's back-off; a lost link or a missing response gives the message back to the queue
  with a growing delay (it may reach the carrier twice: the documented in-flight window); other
  error statuses fail the message with the carrier's status recorded.
* **Local errors are final.** A message of which no valid PDU can be made (building or encoding
  it raises: a sender or number over SMPP's limits, text its encoding cannot carry) would fail
  the same way on every retry: it is FAILED at once, refunded and reported (``unsendable``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from cloudsms.domain.pipeline import (
    DispatchResult,
    LocalClaim,
    OutboundMessage,
    SubmitOutcome,
)
from cloudsms.domain.routing import ALL_DOWN, ConnectorConfig
from cloudsms.services.config_cache import ConfigCache, PreparedConfig
from cloudsms.storage.interfaces import DispatchStore
from cloudsms.transport.client import SmppClient
from cloudsms.workers.inbound import InboundIntake
from cloudsms.workers.leases import LeaseKeeper
from cloudsms.workers.link import Link, now_ms
from cloudsms.workers.recorder import FENCED, DispatchRecorder

log = logging.getLogger("cloudsms.dispatch")

#: Submit attempts (claims) after which a message that keeps failing transiently is given up.
MAX_ATTEMPTS = 100
#: Seconds between two claims from the store when nothing announced work there.
STORE_POLL_S = 0.25

ClientFactory = Callable[..., SmppClient]
T = TypeVar("T")


def retry_delay_ms(attempts: int) -> int:
    """Back-off for a message given back after a transient failure: 1 s doubling to 5 min."""
    return int(min(1000 * 2 ** max(attempts - 1, 0), 300_000))


class Dispatcher:
    def __init__(
        self,
        store: DispatchStore,
        config: ConfigCache,
        *,
        batch: int = 500,
        client_factory: ClientFactory = SmppClient,
        on_committed: Callable[[DispatchResult], None] | None = None,
        role: str = "all",
        lease_s: float = 5.0,
        renew_s: float = 1.0,
        notify_others: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.batch = batch
        self.client_factory = client_factory
        self._on_committed = on_committed
        #: Wakes the other workers (PostgreSQL NOTIFY) after hand-offs and give-backs commit.
        self.notify_others = notify_others
        self.recorder = DispatchRecorder(store, on_committed=self._committed)
        #: Where the links hand carriers' inbound messages (None: logged and dropped).
        self.inbound: InboundIntake | None = None
        self.leases = LeaseKeeper(store, role=role, lease_s=lease_s, renew_s=renew_s)
        self.renew_s = renew_s
        #: Lease calls get a thread of their own: behind the default executor's queue (claims,
        #: outcomes, the API's writes) a renewal could wait past the lease under heavy load.
        self._lease_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lease")
        #: Connectors we own, so run links for (see cloudsms.workers.leases).
        self.owned: frozenset[int] = frozenset()
        self._registered = False
        self.links: dict[int, Link] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reconfigure = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        #: Messages claimed at acceptance, waiting for room on a link (see the module docstring).
        self._local: deque[OutboundMessage] = deque()
        #: The last claim from the store found fewer messages than it asked for: no backlog.
        self._backlog_clear = False
        #: The store may hold messages due for our claim: set by a wake-up (an accept that left
        #: messages unclaimed, a NOTIFY) and by a claim that filled its room; see ``_feed_once``.
        self._store_due = True
        #: Loop time of the last claim from the store.
        self._store_claimed_at = 0.0
        #: Messages the API process claimed for us (two-process layout), received so far.
        self._remote_received = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """New work may be due in the store (called by the API after an accept)."""
        self._store_due = True
        self._wake.set()

    def _committed(self, result: DispatchResult) -> None:
        if (result.handed_off or result.requeued) and self.notify_others is not None:
            self.notify_others()
        if self._on_committed is not None:
            self._on_committed(result)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._register()
        recovered = await asyncio.to_thread(self.store.recover_in_flight)
        if recovered:
            log.warning("%d messages were in flight at the last stop; resubmitting", recovered)
        self.recorder.start()
        loop = asyncio.get_running_loop()

        def changed(config: PreparedConfig) -> None:
            loop.call_soon_threadsafe(self._schedule_reconfigure, config)

        self.config.subscribe(changed)
        await self._tick()
        self._tasks = [
            asyncio.create_task(self._feed(), name="dispatch-feed"),
            asyncio.create_task(self._publish_status(), name="connector-status"),
            asyncio.create_task(self._keep_leases(), name="leases"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stop_links(list(self.links), detail="dispatcher stopped")
        while self._local:
            self.give_back(self._local.popleft(), detail="dispatcher stopped")
        await self.recorder.close()
        if self.inbound is not None:
            await self.inbound.close()
        if self._registered:
            try:
                await self._in_lease_thread(self.leases.retire)
            except Exception:
                log.exception("could not retire this worker; its leases will run out")
        self._lease_thread.shutdown(wait=False)

    async def _stop_links(self, connector_ids: list[int], *, detail: str) -> None:
        for cid in connector_ids:
            link = self.links.pop(cid, None)
            if link is not None:
                for message in await link.stop():
                    self.give_back(message, detail=detail, delay_ms=0)

    # -- leases -----------------------------------------------------------------------------

    async def _in_lease_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._lease_thread, fn, *args)

    async def _register(self) -> None:
        worker_id = await self._in_lease_thread(self.leases.register)
        self.recorder.claimer = worker_id
        self._registered = True

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self._tick()
            except Exception:
                log.exception("lease tick failed")

    async def _tick(self) -> None:
        """Renew our leases, take or give up connectors, start or stop links to match."""
        if not self._registered:
            await self._register()
        available = {cid: link.client.available for cid, link in self.links.items()}
        if not await self._in_lease_thread(self.leases.renew, available):
            await self._fence()
            return
        enabled = [c.id for c in self.config.current.routing.connectors.values() if c.enabled]
        keep, give_up = await self._in_lease_thread(self.leases.balance, enabled)
        async with self._reconfigure:
            if give_up:
                await self._stop_links(sorted(give_up), detail="connector moved to another worker")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await self.recorder.flush()
                await self._in_lease_thread(self.leases.release, give_up)
            changed = keep != self.owned
            self.owned = keep
        if changed or give_up:
            await self._apply(self.config.current)

    async def _fence(self) -> None:
        """Our lease is lost: others may own our connectors and hold our claims. Stop them all."""
        async with self._reconfigure:
            await self._stop_links(list(self.links), detail="lease lost")
            self.owned = frozenset()
            self._registered = False
        with contextlib.suppress(TimeoutError):  # give-backs of claims that may still be ours
            async with asyncio.timeout(2):
                await self.recorder.flush()
        self.recorder.claimer = FENCED  # our outcomes from now on must not apply to anything
        try:
            await self._register()
        except Exception:
            log.exception("could not register again; retrying")

    # -- outcomes shared by the links --------------------------------------------------------

    def retry(
        self, message: OutboundMessage, detail: str, delay_ms: int | None = None
    ) -> SubmitOutcome:
        if message.attempts >= MAX_ATTEMPTS:
            return SubmitOutcome(
                sms_uid=message.sms_uid, kind="failed", detail=f"gave up: {detail}"
            )
        delay = retry_delay_ms(message.attempts) if delay_ms is None else delay_ms
        return SubmitOutcome(
            sms_uid=message.sms_uid, kind="retry", retry_at_ms=now_ms() + delay, detail=detail
        )

    def unsendable(
        self, message: OutboundMessage, connector: ConnectorConfig, error: Exception
    ) -> SubmitOutcome:
        """A deterministic local error (no valid PDU can be made of the message): final at once.

        Building and encoding a message's PDUs depend only on the message and its connector, so
        a retry would fail the same way (an over-long sender once stayed ACCEPTED for 7.7 h of
        back-off, a traceback each time). The message is FAILED, its fee refunded (it never
        left the platform), its report pushed; one warning line says why.
        """
        detail = f"cannot be sent: {error}"
        log.warning(
            "message %s %s; failed without retry, fee refunded",
            message.sms_uid,
            detail,
            extra={"sms_uid": message.sms_uid, "connector": connector.name},
        )
        return SubmitOutcome(
            sms_uid=message.sms_uid, kind="unsendable", connector_id=connector.id, detail=detail
        )

    def give_back(self, message: OutboundMessage, *, detail: str, delay_ms: int = 0) -> None:
        self.recorder.record(
            SubmitOutcome(
                sms_uid=message.sms_uid, kind="retry", retry_at_ms=now_ms() + delay_ms,
                detail=detail,
            )
        )  # fmt: skip

    # -- messages claimed at acceptance -------------------------------------------------------

    def local_claim(self) -> LocalClaim | None:
        """What the writer may claim for us in its next transaction (called on its thread)."""
        claimer = self.recorder.claimer
        if self._stopping or not self._backlog_clear or claimer is None or claimer == FENCED:
            return None
        room = sum(link.free_slots() for link in list(self.links.values()))
        room -= len(self._local)
        return LocalClaim(claimer, room) if room > 0 else None

    @property
    def remote_received(self) -> int:
        """Messages received so far from the API process (``take_remote``), ours or not."""
        return self._remote_received

    def take_remote(self, claimer: int, messages: list[OutboundMessage]) -> None:
        """Messages the API process claimed for us as it accepted them: submit them.

        The two-process layout (``runtime.layout``): the claim is committed by the API process,
        which sends the messages themselves, so nothing is read back from the store. Messages
        claimed for another worker id (an earlier run of this worker), or arriving while we
        stop or after our lease was lost, are left to the recovery of that claim.
        """
        self._remote_received += len(messages)
        mine = self.recorder.claimer
        if self._stopping or mine is None or mine == FENCED or claimer != mine:
            return
        messages.sort(key=lambda m: (-m.priority, m.sms_uid))
        self._take_local(messages)

    def take_claimed(self, messages: list[OutboundMessage]) -> None:
        """Messages the writer claimed for us and committed (called on its thread)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._take_local, messages)

    def _take_local(self, messages: list[OutboundMessage]) -> None:
        if self._stopping:
            for message in messages:
                self.give_back(message, detail="dispatcher stopped")
            return
        self._local.extend(messages)
        self._wake.set()

    # -- configuration ----------------------------------------------------------------------

    def _schedule_reconfigure(self, config: PreparedConfig) -> None:
        if not self._stopping:
            task = asyncio.create_task(self._apply(config))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _apply(self, config: PreparedConfig) -> None:
        """Start, restart or stop links so they match the configured connectors."""
        async with self._reconfigure:
            wanted = {
                cid: cfg
                for cid, cfg in config.routing.connectors.items()
                if cfg.enabled and cid in self.owned
            }
            for cid in list(self.links):
                link = self.links[cid]
                if wanted.get(cid) != link.config:
                    del self.links[cid]
                    for message in await link.stop():
                        self.give_back(message, detail="connector reconfigured")
            for cid, cfg in wanted.items():
                if cid not in self.links:
                    link = Link(cfg, self)
                    self.links[cid] = link
                    await link.start()

    # -- feeding ----------------------------------------------------------------------------

    async def _feed(self) -> None:
        while True:
            try:
                got = await self._feed_once()
            except Exception:
                log.exception("claiming due messages failed")
                await asyncio.sleep(1)
                continue
            if got is None:
                await self._idle(0.05)
            elif got == 0:
                await self._idle(0.25)

    async def _feed_once(self) -> int | None:
        """One round: hand-offs for our links, then a routing claim. None: no room at all."""
        worker = self.recorder.claimer
        free = {cid: link.free_slots() for cid, link in self.links.items()}
        if worker is None or worker == FENCED or sum(free.values()) <= 0:
            return None
        got = 0
        if self.leases.others:
            handed = await self.recorder.gate.run(
                functools.partial(
                    self.store.claim_handed_off,
                    now_ms(),
                    worker,
                    {c: n for c, n in free.items() if n},
                )
            )
            for cid, messages in handed.items():
                link = self.links.get(cid)
                for message in messages:
                    if link is not None and not link.full():
                        link.put(message)
                    else:  # the link went away meanwhile: route it again
                        self.give_back(message, detail="connector moved")
                got += len(messages)
        room = sum(link.free_slots() for link in self.links.values())
        if room <= 0:
            return got
        if self._local:
            local = [self._local.popleft() for _ in range(min(room, len(self._local)))]
            self._route(local)
            return got + len(local)
        # Why not claim from the store whenever the local queue runs dry: with the API claiming
        # what it accepts (``LocalClaim``, the two-process layout's pipe), such a claim finds
        # nothing, and it takes SQLite's write lock, which the API's next commit then waits
        # for (an instrumented run: 189 empty claims in 5 s, the API waiting 1.7 ms per
        # commit). The store is claimed from when told it may hold work, and at least every
        # STORE_POLL_S for what nobody announces (scheduled sends coming due, retries, claims
        # recovered from a dead worker).
        now = asyncio.get_running_loop().time()
        if not self._store_due and now - self._store_claimed_at < STORE_POLL_S:
            return got
        self._store_due, self._store_claimed_at = False, now
        want = min(room, self.batch)
        claimed = await self.recorder.gate.run(
            functools.partial(
                self.store.claim_due,
                now_ms(),
                want,
                claimer=worker,
                leave_to=self.leases.available_elsewhere,
            )
        )
        self._backlog_clear = len(claimed) < want
        if not self._backlog_clear:
            self._store_due = True  # the claim filled its room: more may be waiting
        self._route(claimed)
        return got + len(claimed)

    def _route(self, messages: Sequence[OutboundMessage]) -> None:
        """Put each claimed message on its link's queue, or record why it cannot go."""
        routing = self.config.current.routing
        for message in messages:
            decision = routing.select(message.route_name, message.number, available=self._available)
            if isinstance(decision, int):
                link = self.links.get(decision)
                if link is not None:
                    link.put(message)
                else:
                    self.recorder.record(
                        SubmitOutcome(
                            sms_uid=message.sms_uid, kind="handoff", connector_id=decision
                        )
                    )
            elif decision == ALL_DOWN:
                self.give_back(message, detail="all carriers down", delay_ms=1000)
            else:
                self.recorder.record(
                    SubmitOutcome(sms_uid=message.sms_uid, kind="rejected", detail=decision)
                )

    def _available(self, connector_id: int) -> bool:
        link = self.links.get(connector_id)
        if link is not None:
            return link.available
        return connector_id in self.leases.available_elsewhere

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _publish_status(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            rows = [
                dataclasses.replace(
                    link.status(),
                    owner=self.leases.name,
                    lease_until_ms=self.leases.lease_until_ms or None,
                )
                for link in self.links.values()
            ]
            if rows:
                try:
                    await asyncio.to_thread(self.store.write_connector_status, rows)
                except Exception:
                    log.exception("could not write connector status")
