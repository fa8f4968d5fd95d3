"""One connector's link: its SMPP client, its queue and its sender tasks (see ``dispatcher``).

The dispatcher owns the links (one per connector this process owns) and decides what they send;
a link turns each queued message into PDUs, submits them within the carrier's window (throttling
answers retried here, on the link), turns each answer into a ``SubmitOutcome`` for the recorder,
and turns each carrier ``deliver_sm`` into a ``ReceiptEvent``, answered once stored — or, when
it is an inbound message (MO), hands it to the dispatcher's ``InboundIntake``, answered once
stored too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloudsms import metrics
from cloudsms.domain.dlr import sms_state_of
from cloudsms.domain.inbound import is_mobile_originated
from cloudsms.domain.pipeline import OutboundMessage, PartResult, ReceiptEvent, SubmitOutcome
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus
from cloudsms.domain.submit import build_submits
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import LocalProtocolError
from cloudsms.smpp.pdu import DataSm, DeliverSm
from cloudsms.smpp.receipt import normalise_message_id, receipt_from_pdu
from cloudsms.transport.client import ConnectionLost, NotBound, SubmitError, SubmitTimeout

if TYPE_CHECKING:
    from cloudsms.workers.dispatcher import Dispatcher

log = logging.getLogger("cloudsms.dispatch")

THROTTLED = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
#: Submits of one segment answered "throttled" before the message goes back to the queue.
THROTTLE_TRIES = 5


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LinkStats:
    submitted: int = 0
    last_rate: int = 0
    _window_count: int = 0
    _window_start: float = 0.0


class Link:
    """One connector: its client, its queue and its sender tasks."""

    def __init__(self, config: ConnectorConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.client = dispatcher.client_factory(config, on_deliver=self._on_deliver)
        self.queue: asyncio.Queue[OutboundMessage] = asyncio.Queue(maxsize=config.window * 4)
        self.stats = LinkStats(_window_start=time.monotonic())
        self._references = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def available(self) -> bool:
        return self.client.available and not self.queue.full()

    def free_slots(self) -> int:
        return self.queue.maxsize - self.queue.qsize() if self.client.available else 0

    async def start(self) -> None:
        await self.client.start()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"send-{self.config.name}-{i}")
            for i in range(self.config.window)
        ]

    async def stop(self) -> list[OutboundMessage]:
        """Stop sending; return the messages still waiting in the queue."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.stop()
        left = []
        while not self.queue.empty():
            left.append(self.queue.get_nowait())
        return left

    async def _send_loop(self) -> None:
        while True:
            message = await self.queue.get()
            if self.queue.qsize() == self.queue.maxsize // 2:
                self.dispatcher.wake()  # half empty: claim more before the senders run dry
            try:
                outcome = await self._submit(message)
            except asyncio.CancelledError:
                self.dispatcher.give_back(message, detail="link stopped")
                raise
            except Exception as exc:  # a bug must not kill the sender
                log.exception("submit of %s failed unexpectedly", message.sms_uid)
                outcome = self.dispatcher.retry(message, f"internal error: {exc!r}")
            self.dispatcher.recorder.record(outcome)

    async def _submit(self, message: OutboundMessage) -> SubmitOutcome:
        cfg = self.config
        if message.expires_ms is not None and message.expires_ms <= now_ms():
            # Its validity_period ended while it waited here: never sent; back to ACCEPTED,
            # where no claim takes it and the expiry job ends it EXPIRED.
            return self.dispatcher.retry(message, "validity_period ended before submission")
        try:
            pdus = build_submits(
                sender=message.sender,
                destination=message.number,
                text=message.content,
                encoding=message.encoding,
                connector=cfg,
                reference=next(self._references),
                expires_ms=message.expires_ms,
            )
        except Exception as exc:  # a pure function of the message: it fails every time
            return self.dispatcher.unsendable(message, cfg, exc)
        parts: list[PartResult] = []
        for seq, pdu in enumerate(pdus, start=1):
            for _ in range(THROTTLE_TRIES):
                sent = time.monotonic()
                try:
                    resp = await self.client.submit(pdu)
                except LocalProtocolError as exc:  # encode() refused it: nothing was sent
                    return self.dispatcher.unsendable(message, cfg, exc)
                except NotBound:
                    return self.dispatcher.retry(message, "link down", delay_ms=1000)
                except (SubmitTimeout, ConnectionLost) as exc:
                    return self.dispatcher.retry(message, f"outcome unknown: {exc}")
                except SubmitError as exc:
                    return self.dispatcher.retry(message, f"submit error: {exc}")
                status = resp.command_status
                metrics.submit_answered(cfg.name, status, time.monotonic() - sent)
                if status == CommandStatus.ESME_ROK:
                    carrier_id = normalise_message_id(resp.message_id, cfg.id_mode)
                    parts.append(PartResult(seq, carrier_id, 0))
                    self._count()
                    break
                if status not in THROTTLED:
                    return SubmitOutcome(
                        sms_uid=message.sms_uid,
                        kind="failed",
                        connector_id=cfg.id,
                        detail=f"carrier status 0x{status:08X}",
                    )
            else:
                return self.dispatcher.retry(message, "throttled", delay_ms=2000)
        return SubmitOutcome(
            sms_uid=message.sms_uid, kind="submitted", connector_id=cfg.id, parts=tuple(parts)
        )

    def _count(self) -> None:
        stats = self.stats
        stats.submitted += 1
        stats._window_count += 1
        elapsed = time.monotonic() - stats._window_start
        if elapsed >= 1.0:
            stats.last_rate = int(stats._window_count / elapsed)
            stats._window_count, stats._window_start = 0, time.monotonic()

    async def _on_deliver(self, pdu: DeliverSm | DataSm) -> None:
        receipt = receipt_from_pdu(pdu)
        if receipt is None:
            inbound = self.dispatcher.inbound
            if inbound is not None and is_mobile_originated(pdu):
                # An MO: stored (deduplicated, routed) before this returns and the link answers.
                await inbound.receive(self.config.id, self.config.name, pdu)
            else:
                log.info("deliver_sm ignored (no receipt id, or no inbound intake)",
                         extra={"connector": self.config.name})  # fmt: skip
            return
        metrics.receipt_received(self.config.name, receipt.state, None)
        event = ReceiptEvent(
            connector_id=self.config.id,
            carrier_id=normalise_message_id(receipt.message_id, self.config.id_mode,
                                            source="receipt"),
            sms_state=sms_state_of(receipt.state),
            stat=receipt.state,
            err=receipt.error_code,
            report_ms=now_ms(),
            raw=pdu.payload[:255].decode("latin-1"),  # Latin-1: one character per octet
        )  # fmt: skip
        await self.dispatcher.recorder.record(event)

    def status(self) -> ConnectorStatus:
        return ConnectorStatus(
            connector_id=self.config.id,
            name=self.config.name,
            state="down" if self.client.state == "stopped" else self.client.state,
            window_in_use=self.client.window_in_use,
            window_size=self.config.window,
            submit_rate=self.stats.last_rate,
            submitted_total=self.stats.submitted,
            last_error=self.client.stats().last_error,
            updated_ms=now_ms(),
        )
