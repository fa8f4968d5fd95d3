"""The MO pusher: SMS_PUSH_MO to customers' MO callbacks, by the report pusher's rules.

Strategy: an inbound message is pushed exactly as a delivery report is — claims with a lease,
a semaphore and a queue bound per customer, probe mode while a callback is down, retries by
the same policy for the same window, outcomes flushed in batches — so :class:`MoPusher` *is* a
:class:`~cloudsms.workers.webhooks.ReportPusher` given another outbox and another packet. The
outbox is ``inbound_messages`` (``storage.inbound_ops``: ``claim_due_mo``, ``record_mo_results``),
seen by the pusher through :class:`_MoOutboxAsReports`, which hands it ``DueReport`` rows carrying
what the pusher reads (id, customer, SERIAL, callback, attempts, times) and keeps each claimed
MO by id for :meth:`MoPusher._body` to build its SMS_PUSH_MO (``domain.inbound.build_mo_push``).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence

from cloudsms.domain.inbound import DueMo, build_mo_push
from cloudsms.domain.pipeline import DueReport, ReportResult
from cloudsms.storage.interfaces import MoOutbox
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings


class _MoOutboxAsReports:
    """The MO outbox behind the ``ReportStore`` protocol the pusher speaks."""

    def __init__(self, store: MoOutbox) -> None:
        self.store = store
        self._lock = threading.Lock()
        #: Claimed MOs by outbox id, until their outcome is recorded.
        self.claimed: dict[int, DueMo] = {}

    def claim_due_reports(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 120_000,
        exclude_customers: Collection[int] = (),
        claimer: int | None = None,
        hold_ms: int = 0,
    ) -> list[DueReport]:
        rows = self.store.claim_due_mo(
            now_ms, limit, lease_ms=lease_ms, exclude_customers=exclude_customers,
            claimer=claimer, hold_ms=hold_ms,
        )  # fmt: skip
        with self._lock:
            self.claimed.update((r.id, r) for r in rows)
        return [
            DueReport(
                id=r.id,
                sms_uid=r.mo_uid,
                customer_id=r.customer_id,
                sms_state=0,
                result_desc="",
                report_ms=r.received_ms,
                created_ms=r.created_ms,
                attempts=r.attempts,
                next_attempt_ms=r.next_attempt_ms,
                serial=r.serial,
                callback_url=r.callback_url,
                auth_key=r.auth_key,
                sender=r.destination,
                country_code=0,
                dest_msisdn=r.source,
                customer_body=None,
                segments=r.parts,
                fee_micros=0,
                currency="",
                callback_ca_pem=r.callback_ca_pem,
            )
            for r in rows
        ]

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        self.store.record_mo_results(results, now_ms=now_ms, defer=defer)
        with self._lock:
            for r in results:
                self.claimed.pop(r.id, None)


class MoPusher(ReportPusher):
    """Pushes due inbound messages as SMS_PUSH_MO (see the module docstring)."""

    def __init__(self, store: MoOutbox, settings: WebhookSettings | None = None) -> None:
        self._outbox = _MoOutboxAsReports(store)
        super().__init__(self._outbox, settings)

    def _body(self, row: DueReport, push_ms: int) -> bytes:
        return build_mo_push(self._outbox.claimed[row.id], push_ms=push_ms)
