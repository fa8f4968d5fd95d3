"""The state behind ``MemoryStore`` and two of its operation groups: the report outbox and leases.

``MemoryState`` holds every table as Python data under one lock; ``MemoryReports`` and
``MemoryLeases`` are the outbox and lease operations over it, combined with the accept and
dispatch operations in :class:`cloudsms.storage.memory.MemoryStore` (as the SQL ``Store``
combines its mixins). See that module for what the memory store is for and what it is not.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloudsms.domain.codes import SmsState
from cloudsms.domain.models import Customer
from cloudsms.domain.pipeline import DueReport, NewReport, ReportResult
from cloudsms.domain.reports import FINAL_SMS_STATES, INTERMEDIATE_STATES
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus, RouteRule
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import StoreError
from cloudsms.storage.lease_ops import ConnectorLease, LeaseView, WorkerInfo
from cloudsms.storage.report_ops import DEFAULT_HOLD_MS, GAVE_UP, HELD, SERIAL_MAX
from cloudsms.storage.report_query_ops import ReportCounts


def _now() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Customer:
    info: Customer
    balance_micros: int
    report_serial: int = 0
    callback_ca_pem: str | None = None


@dataclass(slots=True)
class _Message:
    m: dict[str, Any]
    claimed_by: int | None = None
    via_connector: int | None = None


@dataclass(slots=True)
class _Part:
    connector_id: int | None
    carrier_id: str | None
    submit_status: int
    submitted_ms: int
    receipt_stat: str | None = None
    receipt_err: str | None = None
    done_ms: int | None = None


@dataclass(slots=True)
class _Report:
    id: int
    sms_uid: str
    customer_id: int
    sms_state: int
    result_desc: str
    report_ms: int
    created_ms: int
    next_attempt_ms: int
    attempts: int = 0
    done_ms: int | None = None
    last_error: str | None = None
    claimed_by: int | None = None


@dataclass(slots=True)
class _Worker:
    id: int
    name: str
    host: str
    pid: int
    role: str
    started_ms: int
    lease_until_ms: int


@dataclass(slots=True)
class _Lease:
    owner: int | None = None
    lease_until_ms: int = 0
    available: bool = False


class MemoryState:
    """Every table of the memory store, and the clock."""

    def __init__(self, *, clock: Callable[[], int] = _now) -> None:
        #: Epoch ms now; a test may pass a fake clock (leases and recoveries read it).
        self.clock = clock
        self._lock = threading.RLock()
        self._version = 1
        self._customers: dict[int, _Customer] = {}
        self._routes: dict[str, int] = {}
        self._rules: list[RouteRule] = []
        self._connectors: dict[int, ConnectorConfig] = {}
        self._snapshot_fields: dict[str, Any] = {}
        self._messages: dict[str, _Message] = {}
        self._replays: dict[str, tuple[bytes, int]] = {}
        self._parts: dict[tuple[str, int], _Part] = {}
        self._receipts: list[dict[str, Any]] = []
        self._outbox: dict[int, _Report] = {}
        #: Failed report push attempts (``report_attempts``), for tests that look at them.
        self.attempts: list[dict[str, Any]] = []
        self._workers: dict[int, _Worker] = {}
        self._last_worker_id = 0
        self._leases: dict[int, _Lease] = {}
        self._status: dict[int, ConnectorStatus] = {}
        self._ids = itertools.count(1)

    def now_ms(self) -> int:
        return self.clock()

    def close(self) -> None:
        """Nothing to release (the store's interface has it)."""

    def _live_workers(self) -> set[int]:
        now = self.now_ms()
        return {w.id for w in self._workers.values() if w.lease_until_ms > now}


class MemoryReports(MemoryState):
    """The report outbox (``ReportOps`` in the SQL store)."""

    def _add_report(self, r: NewReport, now_ms: int, *, guarded: bool = False) -> bool:
        """enqueue_report: with ``guarded``, nothing for a state already enqueued, after a
        final one, or (intermediate) for a customer who did not opt in."""
        if guarded:
            for prior in self._outbox.values():
                if prior.sms_uid == r.sms_uid and (
                    prior.sms_state == r.sms_state or prior.sms_state in FINAL_SMS_STATES
                ):
                    return False
            if r.sms_state in INTERMEDIATE_STATES:
                customer = self._customers.get(r.customer_id)
                if customer is None or not customer.info.report_intermediate:
                    return False
        at = now_ms if guarded else r.report_ms
        rid = next(self._ids)
        self._outbox[rid] = _Report(rid, r.sms_uid, r.customer_id, r.sms_state, r.result_desc,
                                    r.report_ms, created_ms=at, next_attempt_ms=at)  # fmt: skip
        return True

    def enqueue_report_now(
        self, *, sms_uid: str, customer_id: int, sms_state: int, result_desc: str, report_ms: int
    ) -> bool:
        with self._lock:
            report = NewReport(sms_uid=sms_uid, customer_id=customer_id, sms_state=sms_state,
                               result_desc=result_desc, report_ms=report_ms)  # fmt: skip
            return self._add_report(report, self.now_ms(), guarded=True)

    def claim_due_reports(
        self, now_ms: int, limit: int, *, lease_ms: int = 120_000,
        exclude_customers: Collection[int] = (), claimer: int | None = None,
        hold_ms: int = DEFAULT_HOLD_MS,
    ) -> list[DueReport]:  # fmt: skip
        """As ``ReportOps.claim_due_reports``: oldest first, in order per SMS_UID, held or
        given up without a callback URL, leased to ``claimer``, each with its SERIAL."""
        with self._lock:
            return self._claim_reports(now_ms, limit, lease_ms=lease_ms,
                                       exclude_customers=exclude_customers, claimer=claimer,
                                       hold_ms=hold_ms)  # fmt: skip

    def _claim_reports(
        self, now_ms: int, limit: int, *, lease_ms: int, exclude_customers: Collection[int],
        claimer: int | None, hold_ms: int, sms_uids: Collection[str] | None = None,
    ) -> list[DueReport]:  # fmt: skip
        """claim_due_reports under the lock; with ``sms_uids``, only their reports."""
        undone: dict[str, int] = {}  # sms_uid → lowest undone report id
        for r in self._outbox.values():
            if r.done_ms is None:
                undone.setdefault(r.sms_uid, r.id)
        due = sorted(
            (r for r in self._outbox.values()
             if r.done_ms is None and r.next_attempt_ms <= now_ms
             and undone[r.sms_uid] == r.id and r.customer_id not in exclude_customers
             and (sms_uids is None or r.sms_uid in sms_uids)),
            key=lambda r: (r.next_attempt_ms, r.id),
        )[:limit]  # fmt: skip
        live: list[tuple[_Report, int, _Message, _Customer]] = []
        for r in due:
            msg, customer = self._messages.get(r.sms_uid), self._customers.get(r.customer_id)
            if msg is None or customer is None:
                r.done_ms, r.last_error = now_ms, GAVE_UP + "message or customer missing"
            elif customer.info.callback_url:
                live.append((r, r.next_attempt_ms, msg, customer))
                r.next_attempt_ms, r.claimed_by = now_ms + lease_ms, claimer
            elif r.created_ms + hold_ms > now_ms:
                r.next_attempt_ms, r.last_error = r.created_ms + hold_ms, HELD
                r.claimed_by = None
            else:
                r.done_ms, r.last_error = now_ms, GAVE_UP + "no callback_url"
        per_customer: dict[int, int] = {}
        for r, *_ in live:
            per_customer[r.customer_id] = per_customer.get(r.customer_id, 0) + 1
        serials = {cid: iter(self._take_serials(cid, n)) for cid, n in per_customer.items()}
        out = []
        for r, found_ms, msg, customer in live:
            m = msg.m
            out.append(DueReport(
                id=r.id, sms_uid=r.sms_uid, customer_id=r.customer_id,
                sms_state=r.sms_state, result_desc=r.result_desc, report_ms=r.report_ms,
                created_ms=r.created_ms, attempts=r.attempts,
                next_attempt_ms=found_ms, serial=next(serials[r.customer_id]),
                callback_url=customer.info.callback_url, auth_key=customer.info.auth_key,
                sender=m["sender"], country_code=m["country_code"],
                dest_msisdn=m["dest_msisdn"], customer_body=m["customer_body"],
                segments=m["segments"], fee_micros=m["fee_micros"], currency=m["currency"],
                callback_ca_pem=customer.callback_ca_pem,
            ))  # fmt: skip
        return out

    def _take_serials(self, customer_id: int, n: int) -> list[int]:
        customer = self._customers.get(customer_id)
        if customer is None:
            raise StoreError(f"no customer {customer_id}")
        last = (customer.report_serial + n - 1) % SERIAL_MAX + 1
        customer.report_serial = last
        return [(last - 1 - n + k) % SERIAL_MAX + 1 for k in range(1, n + 1)]

    def record_report_results(
        self, results: Sequence[ReportResult], *, now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:  # fmt: skip
        with self._lock:
            for kind in ("done", "retry", "give_up", "release"):
                for res in results:
                    r = self._outbox.get(res.id)
                    if res.outcome != kind or r is None or r.done_ms is not None:
                        continue
                    r.claimed_by = None
                    if kind != "release":
                        r.attempts += int(res.attempted)
                    if kind == "done":
                        r.done_ms, r.last_error = now_ms, None
                    elif kind == "retry":
                        r.next_attempt_ms, r.last_error = res.next_attempt_ms, res.error[:1000]
                    elif kind == "give_up":
                        r.done_ms, r.last_error = now_ms, (GAVE_UP + res.error)[:1000]
                    else:
                        r.next_attempt_ms = res.next_attempt_ms
            self.attempts.extend(
                {"outbox_id": res.id, "sms_uid": res.sms_uid, "ok": False,
                 "attempted_ms": res.attempted_ms or now_ms, "http_status": res.http_status}
                for res in results
                if res.attempted and res.sms_uid is not None and res.outcome != "done"
            )  # fmt: skip
            for cid, until in (defer or {}).items():
                for r in self._outbox.values():
                    if r.customer_id == cid and r.done_ms is None and r.next_attempt_ms < until:
                        r.next_attempt_ms = until

    def recover_claimed_reports(self, now_ms: int) -> int:
        with self._lock:
            live = self._live_workers()
            n = 0
            for r in self._outbox.values():
                if r.claimed_by is not None and r.done_ms is None and r.claimed_by not in live:
                    r.next_attempt_ms, r.claimed_by = now_ms, None
                    n += 1
            return n

    def expire_overdue(self, now_ms: int, older_than_ms: int, *, limit: int = 1000) -> int:
        with self._lock:
            cutoff = now_ms - older_than_ms
            overdue = sorted(
                (r.m for r in self._messages.values()
                 if r.m["state"] is MessageState.SUBMITTED
                 and (r.m["submitted_ms"] or r.m["updated_ms"]) <= cutoff),
                key=lambda m: m["submitted_ms"] or 0,
            )[:limit]  # fmt: skip
            seen = {m["sms_uid"] for m in overdue}
            past = sorted(
                (r.m for r in self._messages.values()
                 if r.m["state"] in (MessageState.ACCEPTED, MessageState.SUBMITTED)
                 and r.m.get("expires_ms") is not None and r.m["expires_ms"] <= now_ms
                 and r.m["sms_uid"] not in seen),
                key=lambda m: m["expires_ms"],
            )  # fmt: skip
            overdue += past[: limit - len(overdue)]
            for m in overdue:
                m.update(state=MessageState.EXPIRED, sms_state=int(SmsState.EXPIRED),
                         result_desc=SmsState.EXPIRED.name, final_ms=now_ms,
                         updated_ms=now_ms)  # fmt: skip
                report = NewReport.final(
                    sms_uid=m["sms_uid"], customer_id=m["customer_id"],
                    state=MessageState.EXPIRED, result_desc=SmsState.EXPIRED.name,
                    report_ms=now_ms,
                )  # fmt: skip
                self._add_report(report, now_ms, guarded=True)
            return len(overdue)

    def report_counts(self, now_ms: int | None = None) -> ReportCounts:
        with self._lock:
            now = self.now_ms() if now_ms is None else now_ms
            rows = list(self._outbox.values())
            pending = [r for r in rows if r.done_ms is None]
            given_up = sum(1 for r in rows if r.done_ms is not None
                           and (r.last_error or "").startswith(GAVE_UP))  # fmt: skip
            return ReportCounts(
                pending=len(pending), due=sum(1 for r in pending if r.next_attempt_ms <= now),
                done=len(rows) - len(pending) - given_up, given_up=given_up,
                oldest_pending_ms=min((r.created_ms for r in pending), default=None),
            )  # fmt: skip


class MemoryLeases(MemoryState):
    """Worker liveness and connector ownership (``LeaseOps`` in the SQL store)."""

    def register_worker(self, *, name: str, host: str, pid: int, role: str, lease_ms: int) -> int:
        with self._lock:
            self._last_worker_id += 1  # never reused, as in the SQL stores
            now, wid = self.now_ms(), self._last_worker_id
            self._workers[wid] = _Worker(wid, name, host, pid, role, now, now + lease_ms)
            return wid

    def renew_leases(self, worker_id: int, lease_ms: int, available: Mapping[int, bool]) -> bool:
        with self._lock:
            now, w = self.now_ms(), self._workers.get(worker_id)
            others = any(
                o.id != worker_id and o.lease_until_ms > now for o in self._workers.values()
            )
            if w is None or (w.lease_until_ms < now and others):
                return False
            w.lease_until_ms = now + lease_ms
            for cid, ok in available.items():
                lease = self._leases.get(cid)
                if lease is not None and lease.owner == worker_id:
                    lease.lease_until_ms, lease.available = now + lease_ms, ok
            return True

    def retire_worker(self, worker_id: int) -> None:
        with self._lock:
            self._release(worker_id, None)
            self._workers.pop(worker_id, None)

    def expire_workers(self, worker_ids: Collection[int]) -> int:
        with self._lock:
            n = 0
            for wid in worker_ids:
                self._release(wid, None)
                if wid in self._workers:
                    self._workers[wid].lease_until_ms = 0
                    n += 1
            return n

    def list_workers(self, *, live_only: bool = False) -> list[WorkerInfo]:
        with self._lock:
            live = self._live_workers()
            return [_info(w) for _, w in sorted(self._workers.items())
                    if not live_only or w.id in live]  # fmt: skip

    def prune_workers(self, older_than_ms: int) -> int:
        with self._lock:
            cutoff = self.now_ms() - older_than_ms
            gone = [wid for wid, w in self._workers.items() if w.lease_until_ms < cutoff]
            for wid in gone:
                del self._workers[wid]
            return len(gone)

    def lease_view(self) -> LeaseView:
        with self._lock:
            now, live = self.now_ms(), self._live_workers()
            workers = tuple(_info(self._workers[wid]) for wid in sorted(live))
            leases = {
                cid: ConnectorLease(cid, lease.owner, lease.lease_until_ms, lease.available)
                for cid, lease in self._leases.items()
                if lease.owner is not None and lease.lease_until_ms > now
            }
            return LeaseView(now, workers, leases)

    def acquire_connectors(
        self, worker_id: int, connector_ids: Collection[int], lease_ms: int, *, limit: int
    ) -> list[int]:
        with self._lock:
            now, taken = self.now_ms(), list[int]()
            for cid in sorted(set(connector_ids) & set(self._connectors)):
                if len(taken) >= limit:
                    break
                lease = self._leases.setdefault(cid, _Lease())
                if lease.owner is None or lease.lease_until_ms < now or lease.owner == worker_id:
                    lease.owner, lease.lease_until_ms, lease.available = (
                        worker_id, now + lease_ms, False,
                    )  # fmt: skip
                    taken.append(cid)
            return taken

    def release_connectors(self, worker_id: int, connector_ids: Collection[int]) -> None:
        with self._lock:
            self._release(worker_id, connector_ids)

    def _release(self, worker_id: int, connector_ids: Collection[int] | None) -> None:
        for cid, lease in self._leases.items():
            if lease.owner == worker_id and (connector_ids is None or cid in connector_ids):
                self._leases[cid] = _Lease()


def _info(w: _Worker) -> WorkerInfo:
    return WorkerInfo(w.id, w.name, w.host, w.pid, w.role, w.started_ms, w.lease_until_ms)
