"""SmscSimulator: the built-in SMSC, for tests, demos and customers' sandbox routes (SPEC §6).

Strategy: an :class:`~cloudsms.transport.server.SmppServer` whose hooks do what a carrier does:

* **bind**: the :class:`Behaviour` may refuse first (RejectBind); then ``accounts``
  (system_id → password) decides: unknown system_id → ESME_RINVSYSID, wrong password →
  ESME_RINVPASWD (§5.1.3). ``accounts=None`` accepts anyone.
* **submit_sm / data_sm**: the behaviour decides (reply now / later / never / disconnect); an
  accepted segment gets a message id (hex or decimal, ``id_format``) and, if it asked for one
  (registered_delivery, §5.2.17), a receipt whose outcome and delay come from the
  :class:`ReceiptPolicy`. Segments are reassembled (UDH 8/16-bit, sar TLVs, message_payload)
  into :attr:`SmscSimulator.received` so tests can assert what arrived.
* **receipts**: one deliver_sm per accepted segment, sent on a receiver / transceiver link of
  the same system_id (queued while none is bound, as a store-and-forward SMSC does), at most
  ``deliver_window`` outstanding per link. A deliver_sm_resp with an error status (e.g.
  ESME_RX_T_APPN), a timeout or a dropped link means redelivery after ``redeliver_after_s``, up
  to ``max_attempts``. :attr:`SmscSimulator.deliveries` records every attempt's status.
* **inbound messages** (``send_mo``): queued and delivered like receipts; :attr:`SmscSimulator.mos`
  records each MO and the answers to its parts, so a test knows which MOs the platform
  acknowledged (a deliver_sm_resp ESME_ROK promises the MO is stored).

Timed work (slow responses, receipt delays, redeliveries) uses one heap and one timer, not a
timer per message. Recording can be bounded (``record_limit``) or switched off (0) for
benchmarks and long-running sandboxes.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Literal

from cloudsms.simulator.behaviours import DISCONNECT, NO_REPLY, Behaviour, Happy
from cloudsms.simulator.mo import build_mo
from cloudsms.simulator.reassembly import Reassembler, ReceivedMessage
from cloudsms.simulator.receipts import ReceiptPolicy, build_receipt, receipt_date
from cloudsms.smpp.codec import encode
from cloudsms.smpp.constants import CommandStatus, EsmClass
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import DataSm, DataSmResp, Pdu, SubmitSm, SubmitSmResp
from cloudsms.smpp.udh import split_udh
from cloudsms.transport.connection import with_sequence
from cloudsms.transport.server import BindRequest, SmppServer, SmscConnection

log = logging.getLogger(__name__)

IdFormat = Literal["hex", "decimal"]
ID_FORMATS: Final[tuple[IdFormat, ...]] = ("hex", "decimal")


@dataclass(slots=True)
class SegmentRecord:
    """One submit_sm / data_sm as the simulator saw it."""

    at: float  # time.monotonic() on arrival
    system_id: str
    sequence_number: int
    destination_addr: str
    #: The id given ("" if refused or never answered) and the status answered (None: none).
    message_id: str
    status: int | None


@dataclass(slots=True)
class DeliveryRecord:
    """The receipt for one segment and what became of each attempt to deliver it."""

    message_id: str
    receipt_id: str
    system_id: str
    outcome: str
    #: How the link it went out on was bound ("rx" or "trx"), for the last attempt.
    via: str = ""
    #: command_status of each deliver_sm_resp (None: timeout or link lost), in attempt order.
    statuses: list[int | None] = field(default_factory=list)
    #: time.monotonic() when the last attempt was sent, and when its response arrived.
    sent_at: float | None = None
    answered_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 0


@dataclass(slots=True)
class MoRecord:
    """One inbound message the simulator sent, and the answers to the deliver_sm of its parts."""

    source: str
    destination: str
    text: str
    parts: int
    system_id: str
    #: The same fields as :class:`DeliveryRecord`'s, over every attempt of every part.
    via: str = ""
    statuses: list[int | None] = field(default_factory=list)
    sent_at: float | None = None
    answered_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        """Every part answered ESME_ROK (a part is not sent again once answered so)."""
        return self.statuses.count(0) >= self.parts


class _Job:
    __slots__ = ("attempts", "data", "record", "system_id")

    def __init__(
        self, system_id: str, data: bytes, record: DeliveryRecord | MoRecord | None
    ) -> None:
        self.system_id = system_id
        self.data = data
        self.record = record
        self.attempts = 0


class SmscSimulator(SmppServer):
    """The simulator. ``await sim.start()``, point clients at ``sim.port``, ``await sim.stop()``.

    >>> sim = SmscSimulator("127.0.0.1", 0, accounts={"acme": "secret"},
    ...                     receipts=ReceiptPolicy(delivered=0.9, undeliverable=0.1), seed=7)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        accounts: Mapping[str, str] | None,
        behaviour: Behaviour | None = None,
        receipts: ReceiptPolicy | None = None,
        seed: int | None = None,
        id_format: IdFormat = "hex",
        receipt_id_format: IdFormat | None = None,
        first_id: int | None = None,
        record_limit: int | None = None,
        deliver_window: int = 100,
        redeliver_after_s: float = 1.0,
        max_attempts: int = 5,
        system_id: str = "cloudsms-sim",
        response_timeout_s: float = 30.0,
        bind_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(
            host,
            port,
            system_id=system_id,
            response_timeout_s=response_timeout_s,
            bind_timeout_s=bind_timeout_s,
        )
        if id_format not in ID_FORMATS or (receipt_id_format or id_format) not in ID_FORMATS:
            raise ValueError(f"id formats must be one of {ID_FORMATS}")
        self.accounts = dict(accounts) if accounts is not None else None
        self.behaviour = behaviour or Happy()
        self.receipts = receipts or ReceiptPolicy()
        self.rng = random.Random(seed)
        self.id_format: IdFormat = id_format
        self.receipt_id_format: IdFormat = receipt_id_format or id_format
        self.deliver_window = deliver_window
        self.redeliver_after_s = redeliver_after_s
        self.max_attempts = max_attempts
        self._recording = record_limit != 0
        #: Complete messages received (reassembled), oldest first.
        self.received: deque[ReceivedMessage] = deque(maxlen=record_limit)
        #: Every segment received, oldest first.
        self.segments: deque[SegmentRecord] = deque(maxlen=record_limit)
        #: Every receipt generated, with the fate of its deliveries.
        self.deliveries: deque[DeliveryRecord] = deque(maxlen=record_limit)
        self.reassembler = Reassembler()
        #: Counters: submits seen, receipts sent / acknowledged / expired (never sent).
        self.submit_count = 0
        self.receipts_sent = 0
        self.receipts_acked = 0
        self.receipts_expired = 0
        #: deliver_sm of inbound messages queued (``send_mo``).
        self.mo_sent = 0
        #: Every inbound message sent (``send_mo``), with the answers to its parts.
        self.mos: deque[MoRecord] = deque(maxlen=record_limit)
        #: enquire_link received (answered or not, per the behaviour).
        self.enquire_links = 0
        #: The most submits ever outstanding (received, not yet answered) on one connection.
        self.max_outstanding = 0
        if first_id is not None and not 0 <= first_id < 2**63:
            raise ValueError(f"first_id must be 0..2**63-1, got {first_id}")
        #: Message ids count up by one per accepted segment, from ``first_id`` when given (two
        #: simulators given the same one issue the same ids, as carriers with plain decimal
        #: counters do), else from a random start (distinct ids across simulators).
        self._next_id = (
            first_id - 1 if first_id is not None else self.rng.randrange(0x10000000, 0x7FFFFFFF)
        )
        self._receivers: dict[str, list[SmscConnection]] = {}
        self._backlog: dict[str, deque[_Job]] = {}
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._heap_counter = 0
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    # -- binding --------------------------------------------------------------------------------

    def authenticate(self, conn: SmscConnection, bind: BindRequest) -> int:
        status = self.behaviour.bind_status(bind.system_id)
        if status:
            return status
        if self.accounts is None:
            return 0
        expected = self.accounts.get(bind.system_id)
        if expected is None:
            return CommandStatus.ESME_RINVSYSID
        if expected != bind.password:
            return CommandStatus.ESME_RINVPASWD
        return 0

    def on_enquire_link(self, conn: SmscConnection, pdu: Pdu) -> None:
        self.enquire_links += 1
        if self.behaviour.answers_enquire_link:
            super().on_enquire_link(conn, pdu)

    def on_bound(self, conn: SmscConnection) -> None:
        if conn.can_receive:
            self._receivers.setdefault(conn.system_id, []).append(conn)
            self._pump(conn.system_id)

    def on_closed(self, conn: SmscConnection) -> None:
        receivers = self._receivers.get(conn.system_id)
        if receivers and conn in receivers:
            receivers.remove(conn)

    # -- submits --------------------------------------------------------------------------------

    def handle_request(self, conn: SmscConnection, pdu: Pdu) -> None:
        cls = type(pdu)
        if cls is not SubmitSm and cls is not DataSm:
            super().handle_request(conn, pdu)
            return
        assert isinstance(pdu, SubmitSm | DataSm)
        self.submit_count += 1
        decision = self.behaviour.on_submit(self.submit_count)
        action = decision.action
        if action == DISCONNECT:
            self._record(conn, pdu, "", None)
            log.info("%s: behaviour %r: disconnecting", conn.peer, self.behaviour)
            conn.close()
            return
        if action == NO_REPLY:
            self._record(conn, pdu, "", None)
            self._outstanding(conn, 1)
            return
        status = decision.status
        message_id = self._new_id() if status == 0 else ""
        if self._recording:
            self._record(conn, pdu, message_id, status)
        if decision.delay > 0:
            self._outstanding(conn, 1)
            self._at(decision.delay, partial(self._reply_later, conn, pdu, status, message_id))
        elif cls is SubmitSm:
            conn.send(
                SubmitSmResp(
                    sequence_number=pdu.sequence_number,
                    command_status=status,
                    message_id=message_id,
                )
            )
        else:
            conn.send(
                DataSmResp(
                    sequence_number=pdu.sequence_number,
                    command_status=status,
                    message_id=message_id,
                )
            )
        if status == 0 and pdu.registered_delivery & 0x03:
            self._make_receipt(conn.system_id, pdu, message_id)

    def _reply_later(
        self, conn: SmscConnection, pdu: SubmitSm | DataSm, status: int, message_id: str
    ) -> None:
        self._outstanding(conn, -1)
        conn.answer(pdu, status, message_id=message_id)

    def _outstanding(self, conn: SmscConnection, delta: int) -> None:
        conn.outstanding_requests += delta
        if conn.outstanding_requests > self.max_outstanding:
            self.max_outstanding = conn.outstanding_requests

    def _record(
        self, conn: SmscConnection, pdu: SubmitSm | DataSm, message_id: str, status: int | None
    ) -> None:
        if not self._recording:
            return
        self.segments.append(
            SegmentRecord(
                time.monotonic(),
                conn.system_id,
                pdu.sequence_number,
                pdu.destination_addr,
                message_id,
                status,
            )
        )
        message = self.reassembler.add(conn.system_id, pdu, message_id)
        if message is not None:
            self.received.append(message)

    def _new_id(self) -> str:
        self._next_id += 1
        return _format_id(self._next_id, self.id_format)

    # -- receipts -------------------------------------------------------------------------------

    def _make_receipt(self, system_id: str, pdu: SubmitSm | DataSm, message_id: str) -> None:
        outcome = self.receipts.outcome(pdu.destination_addr, self.rng)
        if outcome == "expired":  # no receipt ever: the platform's expiry timer must notice
            self.receipts_expired += 1
            return
        if pdu.registered_delivery & 0x03 == 0x02 and outcome == "delivered":
            return  # §5.2.17: receipt on failure only
        payload = pdu.payload
        if pdu.esm_class & _UDHI:
            payload = split_udh(payload)[1]
        receipt_id = message_id
        if self.receipt_id_format != self.id_format:
            number = int(message_id, 16 if self.id_format == "hex" else 10)
            receipt_id = _format_id(number, self.receipt_id_format)
        receipt = build_receipt(
            message_id=receipt_id,
            outcome=outcome,
            original_source=pdu.source_addr[:20],
            original_destination=pdu.destination_addr[:20],
            submit_date=receipt_date(),
            text=_snippet(payload, pdu.data_coding),
            source_ton=pdu.dest_addr_ton,
            source_npi=pdu.dest_addr_npi,
            dest_ton=pdu.source_addr_ton,
            dest_npi=pdu.source_addr_npi,
        )
        record = None
        if self._recording:
            record = DeliveryRecord(message_id, receipt_id, system_id, outcome)
            self.deliveries.append(record)
        job = _Job(system_id, encode(receipt), record)
        delay = self.receipts.sample_delay(self.rng)
        if delay > 0:
            self._at(delay, partial(self._enqueue, job))
        else:
            self._enqueue(job)

    def _enqueue(self, job: _Job) -> None:
        backlog = self._backlog.get(job.system_id)
        if backlog is None:
            backlog = self._backlog[job.system_id] = deque()
        backlog.append(job)
        self._pump(job.system_id)

    def _pump(self, system_id: str) -> None:
        backlog = self._backlog.get(system_id)
        receivers = self._receivers.get(system_id)
        if not backlog or not receivers:
            return
        window = self.deliver_window
        for conn in receivers:
            while backlog and conn.outstanding < window and conn.can_receive:
                self._send(conn, backlog.popleft())
            if not backlog:
                return

    def _send(self, conn: SmscConnection, job: _Job) -> None:
        seq = conn.session.sequence.next()
        job.attempts += 1
        self.receipts_sent += 1
        fut = conn.expect(seq, with_sequence(job.data, seq))
        if job.record is not None:
            job.record.sent_at = time.monotonic()
            job.record.via = conn.bind_kind or ""
        fut.add_done_callback(partial(self._delivered, conn, job))

    def _delivered(self, conn: SmscConnection, job: _Job, fut: asyncio.Future[Pdu]) -> None:
        if self._stopped:
            return
        status: int | None = None
        if not fut.cancelled() and fut.exception() is None:
            status = fut.result().command_status
        if job.record is not None:
            job.record.statuses.append(status)
            job.record.answered_at = time.monotonic()
        if status == 0:
            self.receipts_acked += 1
        elif job.attempts < self.max_attempts:
            self._at(self.redeliver_after_s, partial(self._enqueue, job))
        else:
            log.info("receipt for %s: giving up after %d attempts", job.system_id, job.attempts)
        self._pump(job.system_id)

    # -- inbound messages (MO) ------------------------------------------------------------------

    def send_mo(
        self,
        source: str,
        destination: str,
        text: str,
        *,
        system_id: str | None = None,
        reference: int | None = None,
        sixteen_bit: bool = False,
    ) -> int:
        """Send a handset's message to a bound receiver (``system_id``, else the first account
        bound to receive), delivered and redelivered like a receipt; returns the parts queued.

        ValueError when nobody is bound to receive it. Call on the simulator's event loop.
        """
        if system_id is None:
            system_id = next((sid for sid, conns in self._receivers.items() if conns), None)
            if system_id is None:
                raise ValueError("no ESME is bound to receive inbound messages")
        pdus = build_mo(source, destination, text, reference=reference, sixteen_bit=sixteen_bit)
        record = None
        if self._recording:
            record = MoRecord(source, destination, text, len(pdus), system_id)
            self.mos.append(record)
        for pdu in pdus:
            self._enqueue(_Job(system_id, encode(pdu), record))
        self.mo_sent += len(pdus)
        return len(pdus)

    # -- one timer for everything that waits ------------------------------------------------------

    def _at(self, delay: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        self._heap_counter += 1
        heapq.heappush(self._heap, (when, self._heap_counter, callback))
        if self._timer is None or when < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, callback = heapq.heappop(heap)
            callback()
        if heap and self._timer is None:
            self._timer = loop.call_at(heap[0][0], self._fire)

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        await super().stop()

    # -- inspection -----------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "submits": self.submit_count,
            "receipts_sent": self.receipts_sent,
            "receipts_acked": self.receipts_acked,
            "receipts_expired": self.receipts_expired,
            "receipts_waiting": sum(len(b) for b in self._backlog.values()) + len(self._heap),
            "max_outstanding": self.max_outstanding,
        }


#: esm_class UDHI (§5.2.12) as a plain int: ``&`` with the IntFlag member runs Python code.
_UDHI: Final = int(EsmClass.UDHI)

#: Octets that mean the same character in GSM 03.38 (unpacked), IA5, Latin-1 and ASCII.
_PLAIN: Final = bytes(
    c for c in range(0x20, 0x7B) if c not in (0x24, 0x40) and not 0x5B <= c <= 0x60
)


def _snippet(payload: bytes, data_coding: int) -> str:
    """The first 20 characters of the text, for the receipt's ``text:`` field (Appendix B).

    Plain ASCII letters, digits and punctuation read the same in data codings 0, 1 and 3, so
    they skip the (slow) GSM codec; anything else is decoded properly.
    """
    head = payload[:20]
    if data_coding in (0, 1, 3) and not head.translate(None, _PLAIN):
        return head.decode("ascii")
    return decode_text(payload[:40], data_coding)[:20]


def _format_id(number: int, fmt: IdFormat) -> str:
    return f"{number:X}" if fmt == "hex" else str(number)
