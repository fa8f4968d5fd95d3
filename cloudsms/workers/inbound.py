"""The inbound intake: carriers' MO deliver_sm stored, a batch per transaction, before each answer.

A connector's link (``workers.link``) hands every deliver_sm / data_sm that is not a receipt
(``domain.inbound.is_mobile_originated``) to :meth:`InboundIntake.receive`, and answers the
carrier when it returns.

Strategy (group commit, as the dispatch recorder's, ``workers.recorder``): ``receive`` queues
the part and waits for its future. One writer task, started by the first arrival and ended when
the queue is empty, passes the store's gate (``storage.gate``: on SQLite, on the event loop once
the write lock is free) and there takes every part queued so far — those that arrived while it
waited — into ONE durable transaction (``InboundSink.store_inbounds``: deduplicate, hold parts,
route, enqueue the push, apply STOP / START to the customer's opt-out list). Each future is
resolved after the commit, so no deliver_sm_resp leaves before its MO is durable. The country
policies (opt-out keywords per calling code) come from the in-memory configuration
(``services.config_cache``), not from the database per MO.

Failures: a database that is down fails every future of the batch; the links answer
``ESME_RX_T_APPN`` and the carrier delivers them again. A batch whose data the database refuses
(``BatchRejected``) is stored again one MO per transaction, so only the MO refused alone is
answered with an error.

Hook point: :attr:`InboundIntake.on_stored` callbacks run on the event loop for each whole MO
stored. The MO pusher's wake-up is one (``http`` MOs), the SMPP server's MO sender's another
(``smpp`` MOs, when it runs in this process: ``api.smpp_mo``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping

from cloudsms.config import Settings
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.inbound import (
    BadInbound,
    InboundArrival,
    InboundOutcome,
    InboundRecord,
    read_inbound,
)
from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OptAction, inbound_number, opt_keyword
from cloudsms.smpp.pdu import DataSm, DeliverSm
from cloudsms.storage.base import BatchRejected
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.storage.interfaces import InboundSink

log = logging.getLogger("cloudsms.inbound")

Waiting = tuple[InboundArrival, "asyncio.Future[InboundOutcome]"]


class InboundIntake:
    """Stores carriers' inbound messages (see the module docstring)."""

    def __init__(
        self,
        store: InboundSink,
        *,
        dedup_window_s: int = 300,
        reply_window_s: int = 604_800,
        default_customer: str = "",
        uids: UidGenerator | None = None,
        max_batch: int = 500,
    ) -> None:
        self.store = store
        self.dedup_window_ms = dedup_window_s * 1000
        self.reply_window_ms = reply_window_s * 1000
        self.default_customer = default_customer
        self.uids = uids or UidGenerator()
        self.max_batch = max_batch
        #: Called with each whole MO stored (see the module docstring: the hook point).
        self.on_stored: list[Callable[[InboundRecord], None]] = []
        #: The country policies by calling code that choose opt-out keywords (the configuration
        #: snapshot's, asked once per batch). None: keywords are not applied (STOP is an MO).
        self.policies: Callable[[], Mapping[int, CountryPolicy]] | None = None
        #: Where the store call runs (``cloudsms.storage.gate``; the composition root sets it).
        self.gate: Gate = ThreadGate()
        #: Counters for tests and logs.
        self.stored = self.duplicates = self.waiting = self.transactions = 0
        self._queue: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, store: InboundSink, settings: Settings) -> InboundIntake:
        return cls(
            store,
            dedup_window_s=settings.mo_dedup_window_s,
            reply_window_s=settings.mo_reply_window_s,
            default_customer=settings.mo_default_customer,
        )

    async def receive(self, connector_id: int, connector: str, pdu: DeliverSm | DataSm) -> None:
        """Store one MO deliver_sm; returns once it is durable (then the link answers)."""
        try:
            part = read_inbound(pdu)
        except BadInbound as exc:
            # The same bytes would be refused every time: answered, logged, not kept.
            log.warning("inbound message dropped: %s", exc, extra={"connector": connector})
            return
        future: asyncio.Future[InboundOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append((InboundArrival(connector_id, part, self.uids.next_uid()), future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="inbound-intake")
        outcome = await future
        if outcome.status == "duplicate":
            self.duplicates += 1
            log.info("inbound message redelivered, kept once", extra={"connector": connector})
            return
        if outcome.status == "waiting" or outcome.record is None:
            self.waiting += 1
            return
        self.stored += 1
        mo = outcome.record
        if log.isEnabledFor(logging.INFO):
            log.info(
                "inbound message %s from %s to %s: %s",
                mo.mo_uid, mo.source, mo.destination,
                f"customer {mo.customer_id} ({mo.routed_by})" if mo.customer_id else "unrouted",
                extra={"connector": connector},
            )  # fmt: skip
        self._log_opt(mo, outcome)
        for hook in self.on_stored:
            try:
                hook(mo)
            except Exception:
                log.exception("an inbound-message hook failed")

    async def close(self) -> None:
        """Wait for the batch being written (at shutdown, after the links stopped)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    # -------------------------------------------------------------------------- the writer

    async def _write(self) -> None:
        """Store what is queued, a batch per transaction, until nothing is left."""
        try:
            while self._queue:
                taken: list[list[Waiting]] = []
                try:
                    outcomes = await self.gate.run(functools.partial(self._take_and_store, taken))
                except BatchRejected as exc:
                    await self._one_by_one(taken[0] if taken else [], exc)
                    continue
                except Exception as exc:
                    # Not even taken (the gate failed): everything queued fails with it.
                    batch = taken[0] if taken else self._queue[:]
                    if not taken:
                        self._queue.clear()
                    log.error("could not store %d inbound messages: %s", len(batch), exc)
                    self._fail(batch, exc)
                    continue
                self._resolve(taken[0], outcomes)
        finally:
            self._writer = None

    def _take_and_store(self, taken: list[list[Waiting]]) -> list[InboundOutcome]:
        """Runs once the store's gate is passed: what arrived meanwhile goes in too."""
        batch = self._queue[: self.max_batch]
        del self._queue[: len(batch)]
        taken.append(batch)
        return self._store([arrival for arrival, _ in batch])

    def _store(self, arrivals: list[InboundArrival]) -> list[InboundOutcome]:
        outcomes = self.store.store_inbounds(
            arrivals,
            now_ms=time.time_ns() // 1_000_000,
            dedup_window_ms=self.dedup_window_ms,
            reply_window_ms=self.reply_window_ms,
            default_customer=self.default_customer,
            policies=self.policies() if self.policies is not None else None,
        )
        self.transactions += 1
        return outcomes

    async def _one_by_one(self, batch: list[Waiting], exc: BatchRejected) -> None:
        """The database refused the batch's data: each MO alone, so only the refused one fails."""
        if len(batch) == 1:
            log.error("inbound message refused by the database: %s", exc)
            self._fail(batch, exc)
            return
        log.warning("the database refused a batch of %d inbound messages (%s); storing them"
                    " one by one", len(batch), exc)  # fmt: skip
        for arrival, future in batch:
            try:
                outcomes = await self.gate.run(functools.partial(self._store, [arrival]))
            except Exception as one:
                log.error("inbound message refused by the database: %s", one)
                self._fail([(arrival, future)], one)
            else:
                self._resolve([(arrival, future)], outcomes)

    @staticmethod
    def _resolve(batch: list[Waiting], outcomes: list[InboundOutcome]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():  # its link may have gone meanwhile
                future.set_result(outcome)

    @staticmethod
    def _fail(batch: list[Waiting], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    @staticmethod
    def _log_opt(mo: InboundRecord, outcome: InboundOutcome) -> None:
        """Say what an opt-out keyword did (applied in the MO's own transaction), or why not."""
        change = outcome.opt
        extra = {"customer_id": mo.customer_id}
        if change is not None:
            what = "opted out" if change.action is OptAction.OPT_OUT else "opted back in"
            log.info("%s %s (%s)", change.number, what, change.keyword, extra=extra)
        elif (
            mo.customer_id is not None
            and inbound_number(mo.source) is None
            and opt_keyword(mo.text, None) is not None
        ):
            log.warning("opt-out keyword from %r ignored: not an international number",
                        mo.source, extra=extra)  # fmt: skip
