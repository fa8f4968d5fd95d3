"""The inbound intake: a carrier's MO deliver_sm stored before its deliver_sm_resp.

A connector's link (``workers.link``) hands every deliver_sm / data_sm that is not a receipt
(``domain.inbound.is_mobile_originated``) to :meth:`InboundIntake.receive`, and answers the
carrier when it returns. The store call (``InboundSink.store_inbound``: deduplicate, hold parts,
route, enqueue the push) runs in a worker thread in its own durable transaction; if it fails (the
database is down) the exception reaches the link, which answers ``ESME_RX_T_APPN`` so the carrier
delivers the message again. MOs are few next to submits and receipts, so they do not share the
dispatch recorder's group commit.

Hook point: :attr:`InboundIntake.on_stored` callbacks run on the event loop for each whole MO
stored. The MO pusher's wake-up is one (``http`` MOs), the SMPP server's MO sender's another
(``smpp`` MOs, when it runs in this process: ``api.smpp_mo``); the opt-out keywords (STOP, 退订
… of issue 15) are meant to subscribe here (not built yet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cloudsms.config import Settings
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.inbound import BadInbound, InboundRecord, read_inbound
from cloudsms.services.opt_outs import OptOutService
from cloudsms.smpp.pdu import DataSm, DeliverSm
from cloudsms.storage.interfaces import InboundSink

log = logging.getLogger("cloudsms.inbound")


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
    ) -> None:
        self.store = store
        self.dedup_window_ms = dedup_window_s * 1000
        self.reply_window_ms = reply_window_s * 1000
        self.default_customer = default_customer
        self.uids = uids or UidGenerator()
        #: Called with each whole MO stored (see the module docstring: the hook point).
        self.on_stored: list[Callable[[InboundRecord], None]] = []
        #: Applies opt-out keywords (STOP, START …) before the carrier is answered, so a crash
        #: between the two leaves the carrier to redeliver (``services.opt_outs``). None: off.
        self.opt_outs: OptOutService | None = None
        #: Counters for tests and logs.
        self.stored = self.duplicates = self.waiting = 0

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
        outcome = await asyncio.to_thread(
            self.store.store_inbound,
            connector_id,
            part,
            mo_uid=self.uids.next_uid(),
            now_ms=time.time_ns() // 1_000_000,
            dedup_window_ms=self.dedup_window_ms,
            reply_window_ms=self.reply_window_ms,
            default_customer=self.default_customer,
        )
        if outcome.status == "duplicate":
            self.duplicates += 1
            log.info("inbound message redelivered, kept once", extra={"connector": connector})
            return
        if outcome.status == "waiting" or outcome.record is None:
            self.waiting += 1
            return
        self.stored += 1
        mo = outcome.record
        log.info(
            "inbound message %s from %s to %s: %s",
            mo.mo_uid, mo.source, mo.destination,
            f"customer {mo.customer_id} ({mo.routed_by})" if mo.customer_id else "unrouted",
            extra={"connector": connector},
        )  # fmt: skip
        if self.opt_outs is not None and mo.customer_id is not None:
            try:
                await asyncio.to_thread(
                    self.opt_outs.apply_inbound_opt, mo.customer_id, mo.source, mo.text
                )
            except Exception:  # the message itself is stored: answer, and say why
                log.exception("opt-out keyword of inbound message %s not applied", mo.mo_uid)
        for hook in self.on_stored:
            try:
                hook(mo)
            except Exception:
                log.exception("an inbound-message hook failed")
