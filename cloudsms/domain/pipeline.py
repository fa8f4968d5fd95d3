"""The values that travel along the pipeline, between the store and the workers.

A message is accepted (``MessageRecord`` is how readers see its row), claimed for submission
(``OutboundMessage``), submitted (``SubmitOutcome`` with one ``PartResult`` per segment), and
reported on by its carrier (``ReceiptEvent``); the store applies those in batches and answers
with a ``DispatchResult``. A final state enqueues a report (``NewReport``); the pusher claims it
(``DueReport``) and says what became of it (``ReportResult``).

They live in the domain, not in ``storage/``, because both sides speak them: the store maps rows
to and from them, the workers build and read them, and neither should import the other to do so.
Plain values, no I/O. Those made once or more per message are slotted dataclasses that are not
frozen: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, ~5×
the cost of a plain one (``NewMessage``'s 23 fields: 6.3 against 1.3 µs), paid several times per
message in each process. Nothing changes them once made; the others stay frozen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cloudsms.domain.codes import SmsState
from cloudsms.domain.status import MessageState, customer_state
from cloudsms.smpp.encoding import Encoding


@dataclass(slots=True)
class OutboundMessage:
    """A message claimed for submission, with what the connector needs to send it.

    Positional construction follows ``_CLAIM_COLUMNS`` (the claim builds one per row).
    """

    sms_uid: str
    customer_id: int
    country_code: int
    dest_msisdn: str
    route_name: str
    sender: str
    content: str
    encoding: Encoding
    segments: int
    priority: int
    attempts: int
    fee_micros: int
    #: Its own deadline (SMPP validity_period from the customer), epoch ms; None: none.
    expires_ms: int | None = None

    @property
    def number(self) -> str:
        return f"{self.country_code}{self.dest_msisdn}"


@dataclass(frozen=True, slots=True)
class LocalClaim:
    """Claim accepted messages for this process's own dispatcher in the accept transaction.

    Why: when the API and a dispatcher share a process, a message accepted now and due now would
    otherwise be written ACCEPTED, found again by the dispatcher's claim query and rewritten
    QUEUED — a second write of the row and a query per batch, for nothing. Instead the accept
    path writes it QUEUED under ``claimer`` (one attempt) and hands it to the dispatcher in
    memory. Up to ``limit`` messages of a batch are claimed so; the rest are written ACCEPTED and
    claimed from the store as before. A claim made so is like any other: if its worker dies,
    the message is recovered.
    """

    claimer: int
    limit: int


@dataclass(frozen=True, slots=True)
class ReportClaim:
    """Claim the reports a dispatch transaction enqueues, in it, for this process's pusher.

    Why: otherwise each report is enqueued, then found by the pusher's claim query in a
    transaction of its own, after a poll or a wake-up. Claimed with the receipt that made them,
    they go to the pusher in memory; the claim is the usual one (lease, SERIAL, held without a
    callback URL), so a pusher that dies leaves them due again.
    """

    claimer: int | None
    limit: int
    lease_ms: int
    hold_ms: int
    #: Room left per customer the pusher has work for (reports it may still take); a customer
    #: not in it may take up to ``limit``. Reports past a customer's room stay in the outbox
    #: for the pusher's own claim, so none is claimed only to be released again.
    customer_room: Mapping[int, int] = field(default_factory=dict)

    @property
    def full_customers(self) -> frozenset[int]:
        """Customers with no room: none of their reports is claimed by this claim."""
        return frozenset(c for c, room in self.customer_room.items() if room <= 0)


def claim_at_acceptance(state: MessageState, send_at_ms: int, created_ms: int) -> bool:
    """True when a message just accepted may be claimed at once (accepted and due now)."""
    return state is MessageState.ACCEPTED and send_at_ms <= created_ms


@dataclass(slots=True)
class PartResult:
    seq: int
    #: Normalised carrier message id (None when the carrier refused the segment).
    carrier_id: str | None
    status: int


@dataclass(slots=True, kw_only=True)
class SubmitOutcome:
    """What became of one claimed message."""

    sms_uid: str
    #: submitted: every segment acknowledged; failed: the carrier refused it permanently;
    #: unsendable: no valid PDU can be made of it (a deterministic local error: FAILED at once,
    #: refunded, never retried); rejected: no carrier can take it any more (LOCAL_REJECTED,
    #: refunded); retry: try again later; handoff: routed to ``connector_id``, owned by another
    #: worker, which is to submit it.
    kind: Literal["submitted", "failed", "unsendable", "rejected", "retry", "handoff"]
    connector_id: int | None = None
    parts: tuple[PartResult, ...] = ()
    retry_at_ms: int | None = None
    detail: str | None = None


@dataclass(slots=True, kw_only=True)
class ReceiptEvent:
    connector_id: int
    #: Normalised per the connector's id_mode.
    carrier_id: str
    sms_state: SmsState
    stat: str
    err: str | None
    report_ms: int
    raw: str | None = None


@dataclass(slots=True)
class DispatchResult:
    matched: int = 0
    unmatched: int = 0
    #: SMS_UIDs whose report was enqueued in this transaction.
    reported: list[str] = field(default_factory=list)
    #: Messages handed to connectors of other workers (they are to be woken).
    handed_off: int = 0
    #: Messages given back to the queue (retry) in this transaction.
    requeued: int = 0
    #: Reports enqueued and claimed in this transaction for this process's pusher (ReportClaim).
    claimed_reports: list[DueReport] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class NewReport:
    """One report to enqueue (what ``enqueue_reports`` takes)."""

    sms_uid: str
    customer_id: int
    sms_state: int
    #: SMS_STATE name, or LOCAL_REJECTED.
    result_desc: str
    #: When the carrier (or the platform) reported the state, epoch ms.
    report_ms: int

    @classmethod
    def final(
        cls, *, sms_uid: str, customer_id: int, state: MessageState, result_desc: str | None,
        report_ms: int,
    ) -> NewReport:  # fmt: skip
        """The report of a message that reached the final ``state``.

        Its SMS_STATE and RESULT_DESC come from ``status.customer_state``, the mapping DR_QUERY
        answers with too, so a pushed report and a poll agree on every final state.
        """
        sms_state, desc = customer_state(state, None, result_desc)
        return cls(
            sms_uid=sms_uid, customer_id=customer_id, sms_state=int(sms_state), result_desc=desc,
            report_ms=report_ms,
        )  # fmt: skip


@dataclass(slots=True, kw_only=True)
class DueReport:
    """A claimed report with everything its packet needs (``domain.reports.ReportContent``)."""

    id: int
    sms_uid: str
    customer_id: int
    sms_state: int
    result_desc: str
    report_ms: int
    #: When the report was enqueued: the retry window counts from here.
    created_ms: int
    #: Attempts made before this one.
    attempts: int
    #: The due time the claim found (a release puts it back there).
    next_attempt_ms: int
    #: SERIAL for this push (1..65535).
    serial: int
    callback_url: str | None
    auth_key: str
    sender: str
    country_code: int
    dest_msisdn: str
    customer_body: str | None
    segments: int
    fee_micros: int
    currency: str
    #: PEM CA bundle for the customer's HTTPS callback (None: the platform's trust store).
    callback_ca_pem: str | None = None


Outcome = Literal["done", "retry", "give_up", "release"]


@dataclass(slots=True)
class ReportResult:
    """What became of one claimed report. ``next_attempt_ms`` for retry and release."""

    id: int
    outcome: Outcome
    next_attempt_ms: int = 0
    error: str = ""
    #: Whether an HTTP attempt was made (counts in ``attempts``); release never counts.
    attempted: bool = True
    #: The attempt as operators see it in a message's lifecycle (``report_attempts``).
    sms_uid: str | None = None
    attempted_ms: int = 0
    duration_ms: int | None = None
    http_status: int | None = None
    #: The start of the customer's answer body, or the transport error.
    answer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """One row of ``messages``, as the store's readers see it."""

    sms_uid: str
    customer_id: int
    #: SERIAL of the packet that carried the message.
    serial: int
    country_code: int
    dest_msisdn: str
    route_name: str
    sender: str
    #: Final text, signature applied.
    content: str
    encoding: str
    segments: int
    priority: int
    send_at_ms: int
    #: CUSTOMER_BODY exactly as received (serialized JSON), or None.
    customer_body: str | None
    state: MessageState
    #: SMS_STATE of the last report, None before any.
    sms_state: int | None
    result_desc: str | None
    detail: str | None
    #: Amount debited at acceptance, integer micro-units (0 when rejected locally).
    fee_micros: int
    currency: str
    created_ms: int
    updated_ms: int
    # Delivery columns (migration 0003), written by the dispatcher, not by the accept path.
    #: Submit attempts so far.
    attempts: int = 0
    #: Connector that took the message, and when it was submitted / reached a final state.
    connector_id: int | None = None
    submitted_ms: int | None = None
    final_ms: int | None = None
    #: Submitted over SMPP asking for receipts (migration 0010): the account and the
    #: registered_delivery receipt bits; None otherwise.
    smpp_account_id: int | None = None
    smpp_receipt: int | None = None
    #: SMPP validity_period as a deadline, and the message_id of a submit_multi's receipts
    #: (migration 0014); None otherwise.
    expires_ms: int | None = None
    smpp_message_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> MessageRecord:
        """Map a ``messages`` row (``Row._mapping``) to a record.

        Columns the record does not know are ignored and fields the row lacks keep their
        defaults, so a record reads a schema one migration ahead of or behind this code.
        """
        values = {name: row[name] for name in _RECORD_FIELDS if name in row}
        values["state"] = MessageState(values["state"])
        return cls(**values)


_RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MessageRecord))
