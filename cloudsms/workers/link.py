"""One connector's link: its SMPP client, the messages waiting for it, and their submits.

The dispatcher owns the links (one per connector this process owns) and decides what they send;
a link turns each message given to it into PDUs, submits them within the carrier's window
(throttling answers retried here, on the link), turns each answer into a ``SubmitOutcome`` for
the recorder, and turns each carrier ``deliver_sm`` into a ``ReceiptEvent``, answered once
stored — or, when it is an inbound message (MO), hands it to the dispatcher's
``InboundIntake``, answered once stored too. Neither direction takes a task per message
(``Link``'s docstring).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cloudsms import metrics
from cloudsms.domain.dlr import sms_state_of
from cloudsms.domain.inbound import is_mobile_originated
from cloudsms.domain.pipeline import OutboundMessage, PartResult, ReceiptEvent, SubmitOutcome
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus
from cloudsms.domain.submit import build_submits
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import LocalProtocolError
from cloudsms.smpp.pdu import DataSm, DeliverSm, SubmitSm, SubmitSmResp
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


@dataclass(slots=True, eq=False)
class _Flight:
    """One message on its way out: its PDUs, and the parts the carrier has taken so far."""

    message: OutboundMessage
    pdus: list[SubmitSm]
    parts: list[PartResult] = field(default_factory=list)
    #: "Throttled" answers to the part being sent.
    throttled: int = 0
    #: time.monotonic() when the part being sent went out.
    sent: float = 0.0


class Link:
    """One connector: its client, the messages waiting for it, and the pump that sends them.

    Why a pump and not sender tasks: a task per window slot awaiting a future per submit cost
    two task switches and a chain of coroutine frames per message. Here a message waits in a
    deque; :meth:`_pump` sends what the window (and any back-off or throughput limit) allows,
    and each answer, handled in a callback inside the link's read loop, records the outcome,
    sends the message's next part or the next message. A timer stands in while a back-off or
    the throughput limit holds the link.
    """

    def __init__(self, config: ConnectorConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.client = dispatcher.client_factory(config, on_deliver=self._on_deliver)
        #: Messages given to this link and not started, at most ``capacity``.
        self.capacity = config.window * 4
        self._waiting: deque[OutboundMessage] = deque()
        #: Started messages whose next submit waits for its turn (a next part, a throttled
        #: part sent again): they go before the waiting messages.
        self._ready: deque[_Flight] = deque()
        self.stats = LinkStats(_window_start=time.monotonic())
        self._references = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._started = False
        self._stopping = False

    @property
    def available(self) -> bool:
        return self.client.available and len(self._waiting) < self.capacity

    def free_slots(self) -> int:
        return self.capacity - len(self._waiting) if self.client.available else 0

    def full(self) -> bool:
        return len(self._waiting) >= self.capacity

    def put(self, message: OutboundMessage) -> None:
        """Take a message to send (the dispatcher keeps within :meth:`free_slots`)."""
        self._waiting.append(message)
        if self._started and len(self._waiting) == 1 and not self._ready:
            self._pump()

    async def start(self) -> None:
        await self.client.start()
        self._started = True
        self._pump()

    async def stop(self) -> list[OutboundMessage]:
        """Stop sending; return the messages not started.

        Submits in flight get their answers while the client stops (a bounded grace): those
        answered are recorded as usual, the others given back (outcome unknown); messages
        between two parts are given back.
        """
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._ready:
            self.dispatcher.give_back(self._ready.popleft().message, detail="link stopped")
        await self.client.stop()
        left = list(self._waiting)
        self._waiting.clear()
        return left

    # -- sending ----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send what may go now; otherwise leave a timer, or wait for an answer."""
        client = self.client
        while (self._ready or self._waiting) and not self._stopping:
            wait = client.wait_s()
            if wait is None:  # the link is down: the messages go back to be routed again
                self._give_back_all("link down", delay_ms=1000)
                return
            if wait > 0.0:
                if wait != math.inf and self._timer is None:
                    self._timer = asyncio.get_running_loop().call_later(wait, self._timer_fired)
                return  # else an answer will free a window slot and pump again
            flight: _Flight | None
            if self._ready:
                flight = self._ready.popleft()
            else:
                flight = self._begin(self._waiting.popleft())
                if len(self._waiting) == self.capacity // 2:
                    self.dispatcher.wake()  # half empty: claim more before the link runs dry
            if flight is not None:
                self._send(flight)

    def _timer_fired(self) -> None:
        self._timer = None
        self._pump()

    def _give_back_all(self, detail: str, *, delay_ms: int) -> None:
        while self._ready:
            flight = self._ready.popleft()
            self._record(self.dispatcher.retry(flight.message, detail, delay_ms=delay_ms))
        while self._waiting:
            message = self._waiting.popleft()
            self._record(self.dispatcher.retry(message, detail, delay_ms=delay_ms))

    def _begin(self, message: OutboundMessage) -> _Flight | None:
        """The message's PDUs, or None when it cannot go (its outcome is recorded)."""
        if message.expires_ms is not None and message.expires_ms <= now_ms():
            # Its validity_period ended while it waited here: never sent; back to ACCEPTED,
            # where no claim takes it and the expiry job ends it EXPIRED.
            self._record(self.dispatcher.retry(message, "validity_period ended before submission"))
            return None
        try:
            pdus = build_submits(
                sender=message.sender,
                destination=message.number,
                text=message.content,
                encoding=message.encoding,
                connector=self.config,
                reference=next(self._references),
                expires_ms=message.expires_ms,
            )
        except Exception as exc:  # a pure function of the message: it fails every time
            self._record(self.dispatcher.unsendable(message, self.config, exc))
            return None
        return _Flight(message, pdus)

    def _send(self, flight: _Flight) -> None:
        """Submit the flight's next part; its answer comes to :meth:`_answered`."""
        flight.sent = time.monotonic()
        try:
            self.client.submit_nowait(
                flight.pdus[len(flight.parts)], functools.partial(self._answered, flight)
            )
        except LocalProtocolError as exc:  # encode() refused it: nothing was sent
            self._record(self.dispatcher.unsendable(flight.message, self.config, exc))
        except NotBound:
            self._record(self.dispatcher.retry(flight.message, "link down", delay_ms=1000))

    def _answered(self, flight: _Flight, answer: SubmitSmResp | Exception) -> None:
        """One part's answer: record the message's outcome, or send its next part; then pump."""
        try:
            outcome = self._outcome(flight, answer)
        except Exception as exc:  # a bug must not stop the link's read loop
            log.exception("submit of %s failed unexpectedly", flight.message.sms_uid)
            outcome = self.dispatcher.retry(flight.message, f"internal error: {exc!r}")
        if outcome is not None:
            self._record(outcome)
        elif self._stopping:
            self.dispatcher.give_back(flight.message, detail="link stopped")
        else:
            self._ready.append(flight)
        self._pump()

    def _outcome(self, flight: _Flight, answer: SubmitSmResp | Exception) -> SubmitOutcome | None:
        """The message's outcome after this answer; None: it has more to send."""
        message, cfg = flight.message, self.config
        if isinstance(answer, Exception):  # NotBound is raised by submit_nowait, never answered
            if isinstance(answer, SubmitTimeout | ConnectionLost):
                return self.dispatcher.retry(message, f"outcome unknown: {answer}")
            if isinstance(answer, SubmitError):
                return self.dispatcher.retry(message, f"submit error: {answer}")
            raise answer
        status = answer.command_status
        metrics.submit_answered(cfg.name, status, time.monotonic() - flight.sent)
        if status == CommandStatus.ESME_ROK:
            carrier_id = normalise_message_id(answer.message_id, cfg.id_mode)
            flight.parts.append(PartResult(len(flight.parts) + 1, carrier_id, 0))
            flight.throttled = 0
            self._count()
            if len(flight.parts) < len(flight.pdus):
                return None
            return SubmitOutcome(
                sms_uid=message.sms_uid, kind="submitted", connector_id=cfg.id,
                parts=tuple(flight.parts),
            )  # fmt: skip
        if status in THROTTLED:
            flight.throttled += 1
            if flight.throttled < THROTTLE_TRIES:
                return None  # sent again once the client's back-off is over
            return self.dispatcher.retry(message, "throttled", delay_ms=2000)
        return SubmitOutcome(
            sms_uid=message.sms_uid,
            kind="failed",
            connector_id=cfg.id,
            detail=f"carrier status 0x{status:08X}",
        )

    def _record(self, outcome: SubmitOutcome) -> None:
        self.dispatcher.recorder.record(outcome)

    def _count(self) -> None:
        stats = self.stats
        stats.submitted += 1
        stats._window_count += 1
        elapsed = time.monotonic() - stats._window_start
        if elapsed >= 1.0:
            stats.last_rate = int(stats._window_count / elapsed)
            stats._window_count, stats._window_start = 0, time.monotonic()

    def _on_deliver(self, pdu: DeliverSm | DataSm) -> Awaitable[None]:
        """A carrier's deliver_sm / data_sm; the link answers it once what this returns is done.

        A receipt returns the recorder's future for it (done when committed: no task per
        receipt); an inbound message (MO) the intake's coroutine.
        """
        receipt = receipt_from_pdu(pdu)
        if receipt is None:
            return self._on_inbound(pdu)
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
        return self.dispatcher.recorder.record(event)

    async def _on_inbound(self, pdu: DeliverSm | DataSm) -> None:
        inbound = self.dispatcher.inbound
        if inbound is not None and is_mobile_originated(pdu):
            # An MO: stored (deduplicated, routed) before this returns and the link answers.
            await inbound.receive(self.config.id, self.config.name, pdu)
        else:
            log.info("deliver_sm ignored (no receipt id, or no inbound intake)",
                     extra={"connector": self.config.name})  # fmt: skip

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
