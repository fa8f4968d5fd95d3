"""``MemoryStore``: the pipeline's store operations on plain Python data, for tests and trials.

What it is for: unit tests of the workers (the dispatcher, the pusher, the expiry job) without a
database, benchmarks that want to measure a worker and not the database, and trying the pipeline
from a Python prompt. It implements :class:`cloudsms.storage.interfaces.PipelineStore` — accept,
dispatch, reports, leases, the configuration snapshot — with the SQL store's semantics, pinned
by the same contract tests (``tests/integration/test_store_contract.py``): state transitions of
``cloudsms.domain.status``, replay protection, balance debit with the credit floor, receipts
matched by (connector_id, carrier_id) with unmatched receipts kept and matched later, the report
outbox with its order per SMS_UID, claims, leases, retries and serials. Procrastinate ships its
``InMemoryConnector`` in the package for the same reasons (``procrastinate/testing.py``).

What it is not: durable (a process exit loses everything), shared between processes, or the
operator's store (no admin operations but the opt-out lists of ``memory_opt_out.py``, which the
inbound-message path changes; configuration is set with the ``add_*`` helpers below).
Every operation holds one lock, so it behaves as one transaction, from any thread. Times are the
process clock (the SQL store judges leases by the database clock).

    >>> store = MemoryStore()
    >>> cid = store.add_customer(auth_key="k" * 32, balance_micros=1_000_000)
    >>> route = store.add_route("main")
    >>> store.add_connector(ConnectorConfig(id=1, name="sim", host="127.0.0.1", port=2775,
    ...                     system_id="cloudsms", password="secret"), route=route)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cloudsms.domain.codes import LOCAL_REJECTED, SmsState
from cloudsms.domain.dlr import FINAL_MESSAGE_STATE, INTERMEDIATE, message_outcome
from cloudsms.domain.models import ConfigSnapshot, Customer, NewMessage, PacketOutcome, PacketWrite
from cloudsms.domain.pipeline import (
    DispatchResult,
    LocalClaim,
    MessageRecord,
    NewReport,
    OutboundMessage,
    ReceiptEvent,
    ReportClaim,
    SubmitOutcome,
    claim_at_acceptance,
)
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus, RouteRule, RoutingTable
from cloudsms.domain.status import FINAL_STATES, MessageState, customer_state
from cloudsms.exceptions import NotFound
from cloudsms.storage.base import BatchRejected
from cloudsms.storage.dispatch_ops import _stat_state, clip_detail
from cloudsms.storage.memory_inbound import MemoryInbound
from cloudsms.storage.memory_opt_out import MemoryOptOuts
from cloudsms.storage.memory_state import (
    MemoryLeases,
    _Customer,
    _Message,
    _Part,
)
from cloudsms.storage.messages import BACKLOG_STATES, INSUFFICIENT_BALANCE, outbound_of
from cloudsms.storage.report_ops import HELD

_REFUNDED = frozenset({"rejected", "unsendable"})


class MemoryStore(MemoryInbound, MemoryLeases, MemoryOptOuts):
    """The pipeline store in memory (see the module docstring). Not durable."""

    # -- configuration: helpers to set it up, and what the config cache reads ---------------

    def add_customer(
        self, *, name: str | None = None, auth_key: str | None = None, currency: str = "HKD",
        balance_micros: int = 0, credit_limit_micros: int = 0,
        callback_url: str | None = "http://127.0.0.1:9/dr", report_intermediate: bool = False,
        price_list_id: int | None = None, enabled: bool = True,
    ) -> int:  # fmt: skip
        """A customer; returns its id."""
        with self._lock:
            cid = len(self._customers) + 1
            info = Customer(
                id=cid, name=name or f"customer-{cid}", auth_key=auth_key or f"{cid:0128d}",
                enabled=enabled, currency=currency, credit_limit_micros=credit_limit_micros,
                price_list_id=price_list_id, callback_url=callback_url, default_sender=None,
                client_cert_sha256=None, max_backlog=None, report_intermediate=report_intermediate,
            )  # fmt: skip
            self._customers[cid] = _Customer(info, balance_micros)
            self._version += 1
            return cid

    def set_customer(self, customer_id: int, **fields: Any) -> None:
        """Change a customer's configured fields (``callback_url=…``, ``enabled=…``)."""
        with self._lock:
            row = self._customers[customer_id]
            row.info = replace(row.info, **fields)
            if fields.get("callback_url"):  # as ConfigOps.set_callback_url: held reports due now
                now = self.now_ms()
                for r in self._outbox.values():
                    if r.customer_id == customer_id and r.done_ms is None and r.last_error == HELD:
                        r.next_attempt_ms, r.last_error = now, None
            self._version += 1

    def add_route(self, name: str) -> int:
        with self._lock:
            rid = self._routes.setdefault(name, len(self._routes) + 1)
            self._version += 1
            return rid

    def add_connector(
        self, config: ConnectorConfig, *, route: int | None = None, prefix: str = ""
    ) -> int:
        """A connector (or a new version of it) and, with ``route``, a rule sending ``prefix``."""
        with self._lock:
            self._connectors[config.id] = config
            if route is not None:
                self._rules.append(RouteRule(route_id=route, prefix=prefix, connector_id=config.id))
            self._version += 1
            return config.id

    def remove_connector(self, connector_id: int) -> None:
        with self._lock:
            self._connectors.pop(connector_id, None)
            self._rules = [r for r in self._rules if r.connector_id != connector_id]
            self._status.pop(connector_id, None)
            self._leases.pop(connector_id, None)
            self._version += 1

    def set_snapshot_fields(self, **fields: Any) -> None:
        """Other ``ConfigSnapshot`` fields (prices, routes_by_name, grants, …) as given."""
        with self._lock:
            self._snapshot_fields.update(fields)
            self._version += 1

    def config_version(self) -> int:
        return self._version

    def load_snapshot(self) -> ConfigSnapshot:
        with self._lock:
            customers = {c.info.auth_key: c.info for c in self._customers.values()}
            fields = {"opt_outs_by_customer": self.opt_outs_by_customer(), **self._snapshot_fields}
            return ConfigSnapshot(version=self._version, customers_by_key=customers, **fields)

    def load_routing(self) -> RoutingTable:
        with self._lock:
            return RoutingTable.build(
                dict(self._routes), list(self._rules), dict(self._connectors),
                version=self._version,
            )  # fmt: skip

    def customer_balance(self, customer_id: int) -> int:
        with self._lock:
            if customer_id not in self._customers:
                raise NotFound(f"no customer {customer_id}")
            return self._customers[customer_id].balance_micros

    # -- accept -----------------------------------------------------------------------------

    def accept_packets(
        self,
        writes: Sequence[PacketWrite],
        *,
        replay_window_ms: int,
        claim: LocalClaim | None = None,
    ) -> list[PacketOutcome]:
        """As ``MessageOps.accept_packets``: replays, debit in order, all or nothing."""
        with self._lock:
            outcomes: list[PacketOutcome] = []
            answers: dict[str, bytes] = {}
            fresh: list[tuple[int, PacketWrite]] = []
            for w in writes:
                key = w.packet_key
                if key is not None:
                    if key in answers:
                        outcomes.append(PacketOutcome(answer=answers[key], replayed=True))
                        continue
                    hit = self._replays.get(key)
                    if hit is not None and w.created_ms - hit[1] < replay_window_ms:
                        answers[key] = hit[0]
                        outcomes.append(PacketOutcome(answer=hit[0], replayed=True))
                        continue
                    answers[key] = w.answer
                fresh.append((len(outcomes), w))
                outcomes.append(PacketOutcome(answer=w.answer, replayed=False))
            uids = [m.sms_uid for _, w in fresh for m in w.messages]
            unknown = {m.customer_id for _, w in fresh for m in w.messages} - set(self._customers)
            if unknown or len(set(uids)) != len(uids) or any(u in self._messages for u in uids):
                raise BatchRejected("refused by the store: unknown customer or duplicate SMS_UID")
            balance = {cid: c.balance_micros for cid, c in self._customers.items()}
            stored: list[tuple[NewMessage, int | None]] = []
            room = claim.limit if claim is not None else 0
            for i, w in fresh:
                rejected: list[str] = []
                claimed: list[OutboundMessage] = []
                for m in w.messages:
                    if m.state is MessageState.ACCEPTED and m.fee_micros > 0:
                        after = balance[m.customer_id] - m.fee_micros
                        floor = -self._customers[m.customer_id].info.credit_limit_micros
                        if after < floor:
                            m = replace(m, state=MessageState.REJECTED, result_desc=LOCAL_REJECTED,
                                        detail=INSUFFICIENT_BALANCE, fee_micros=0)  # fmt: skip
                            rejected.append(m.sms_uid)
                        else:
                            balance[m.customer_id] = after
                    claimer = None
                    if room > 0 and claim_at_acceptance(m.state, m.send_at_ms, m.created_ms):
                        assert claim is not None
                        claimer, room = claim.claimer, room - 1
                        claimed.append(outbound_of(m))
                    stored.append((m, claimer))
                outcomes[i] = replace(
                    outcomes[i], balance_rejected=tuple(rejected), claimed=tuple(claimed)
                )
            for cid, value in balance.items():
                self._customers[cid].balance_micros = value
            for m, claimer in stored:
                self._insert(m, claimer)
            for _, w in fresh:
                if w.packet_key is not None:
                    self._replays[w.packet_key] = (w.answer, w.created_ms)
            return outcomes

    def _insert(self, m: NewMessage, claimer: int | None = None) -> None:
        final = m.state in FINAL_STATES
        row = {name: getattr(m, name) for name in _NEW_FIELDS}
        row.update(
            sms_state=int(customer_state(m.state, None, m.result_desc)[0]) if final else None,
            updated_ms=m.created_ms, final_ms=m.created_ms if final else None,
            attempts=0 if claimer is None else 1, connector_id=None, submitted_ms=None,
        )  # fmt: skip
        if claimer is not None:  # claimed at acceptance (LocalClaim)
            row["state"] = MessageState.QUEUED
        self._messages[m.sms_uid] = _Message(row, claimed_by=claimer)
        if m.state is MessageState.REJECTED:
            report = NewReport.final(
                sms_uid=m.sms_uid, customer_id=m.customer_id, state=m.state,
                result_desc=m.result_desc, report_ms=m.created_ms,
            )  # fmt: skip
            self._add_report(report, m.created_ms)

    def purge_replays(self, older_than_ms: int) -> int:
        with self._lock:
            old = [k for k, (_, at) in self._replays.items() if at < older_than_ms]
            for k in old:
                del self._replays[k]
            return len(old)

    # -- message reads ----------------------------------------------------------------------

    def get_message(self, sms_uid: str) -> MessageRecord | None:
        with self._lock:
            row = self._messages.get(sms_uid)
            return None if row is None else MessageRecord(**row.m)

    def customer_messages(self, customer_id: int, sms_uids: Sequence[str]) -> list[MessageRecord]:
        with self._lock:
            rows = (self._messages.get(uid) for uid in dict.fromkeys(sms_uids))
            return [MessageRecord(**r.m) for r in rows if r and r.m["customer_id"] == customer_id]

    def backlog_by_customer(self) -> dict[int, int]:
        with self._lock:
            counts: dict[int, int] = {}
            for row in self._messages.values():
                if row.m["state"] in BACKLOG_STATES:
                    cid = row.m["customer_id"]
                    counts[cid] = counts.get(cid, 0) + 1
            return counts

    def parts_of(self, sms_uid: str) -> list[dict[str, object]]:
        with self._lock:
            return [
                {"sms_uid": uid, "seq": seq, **vars_of(p)}
                for (uid, seq), p in sorted(self._parts.items())
                if uid == sms_uid
            ]

    def unmatched_receipts(self, limit: int = 100) -> list[dict[str, object]]:
        with self._lock:
            rows = [dict(r) for r in reversed(self._receipts) if r["sms_uid"] is None]
            return rows[:limit]

    # -- dispatch ---------------------------------------------------------------------------

    def recover_in_flight(self) -> int:
        with self._lock:
            live = self._live_workers()
            n = 0
            for row in self._messages.values():
                if row.m["state"] is MessageState.QUEUED and row.claimed_by not in live:
                    row.m["state"], row.claimed_by = MessageState.ACCEPTED, None
                    n += 1
            return n

    def claim_due(
        self, now_ms: int, limit: int, *, claimer: int | None = None,
        leave_to: Collection[int] = (),
    ) -> list[OutboundMessage]:  # fmt: skip
        with self._lock:
            claimed: list[OutboundMessage] = []
            for priority in (1, 0):
                want = limit - len(claimed)
                if want <= 0:
                    break
                due = [
                    r for r in self._messages.values()
                    if r.m["state"] is MessageState.ACCEPTED and r.m["priority"] == priority
                    and r.m["send_at_ms"] <= now_ms and not _past_deadline(r, now_ms)
                    and (r.via_connector is None or r.via_connector not in leave_to)
                ]  # fmt: skip
                claimed.extend(self._take(due, want, now_ms, claimer))
            claimed.sort(key=lambda m: (-m.priority, m.sms_uid))
            return claimed

    def claim_handed_off(
        self, now_ms: int, claimer: int, limits: Mapping[int, int]
    ) -> dict[int, list[OutboundMessage]]:
        with self._lock:
            found: dict[int, list[OutboundMessage]] = {}
            for cid, limit in sorted(limits.items()):
                due = [
                    r for r in self._messages.values()
                    if r.via_connector == cid and r.m["state"] is MessageState.ACCEPTED
                    and r.m["send_at_ms"] <= now_ms and not _past_deadline(r, now_ms)
                ]  # fmt: skip
                taken = self._take(due, limit, now_ms, claimer) if limit > 0 else []
                if taken:
                    found[cid] = taken
            return found

    def _take(
        self, due: list[_Message], limit: int, now_ms: int, claimer: int | None
    ) -> list[OutboundMessage]:
        due.sort(key=lambda r: (r.m["send_at_ms"], r.m["sms_uid"]))
        out = []
        for r in due[:limit]:
            m = r.m
            m["state"], m["attempts"], m["updated_ms"] = (
                MessageState.QUEUED,
                m["attempts"] + 1,
                now_ms,
            )
            r.claimed_by, r.via_connector = claimer, None
            out.append(OutboundMessage(*(m[name] for name in _CLAIM_FIELDS)))
        return out

    def record_dispatch(
        self, outcomes: Sequence[SubmitOutcome], receipts: Sequence[ReceiptEvent], now_ms: int,
        *, claimer: int | None = None, report_claim: ReportClaim | None = None,
    ) -> DispatchResult:  # fmt: skip
        """As ``DispatchOps.record_dispatch``: outcomes, then waiting receipts, then receipts,
        then (``report_claim``) the claim of the reports enqueued."""
        with self._lock:
            result = DispatchResult()
            new_ids = self._apply_outcomes(outcomes, now_ms, result, claimer)
            waiting = [
                r
                for r in self._receipts
                if r["sms_uid"] is None and (r["connector_id"], r["carrier_id"]) in new_ids
            ]
            if waiting:
                gone = {id(r) for r in waiting}
                self._receipts = [r for r in self._receipts if id(r) not in gone]
            events = [_receipt_event(r) for r in waiting] + list(receipts)
            self._apply_receipts(events, now_ms, result)
            if report_claim is not None and report_claim.limit > 0 and result.reported:
                room = dict(report_claim.customer_room)
                uids = set()
                for uid in result.reported:  # each customer's up to its room, as SQL does
                    cid = self._messages[uid].m["customer_id"]
                    left = room.get(cid, report_claim.limit)
                    if left > 0:
                        room[cid] = left - 1
                        uids.add(uid)
                result.claimed_reports = self._claim_reports(
                    now_ms, report_claim.limit, lease_ms=report_claim.lease_ms,
                    exclude_customers=(), claimer=report_claim.claimer,
                    hold_ms=report_claim.hold_ms, sms_uids=uids,
                )  # fmt: skip
            return result

    def _mine(self, uid: str, claimer: int | None) -> _Message | None:
        row = self._messages.get(uid)
        if row is None or row.m["state"] is not MessageState.QUEUED:
            return None
        return row if claimer is None or row.claimed_by == claimer else None

    def _apply_outcomes(
        self, outcomes: Sequence[SubmitOutcome], now_ms: int, result: DispatchResult,
        claimer: int | None,
    ) -> set[tuple[int, str]]:  # fmt: skip
        new_ids: set[tuple[int, str]] = set()
        later: list[SubmitOutcome] = []
        for o in outcomes:
            if o.kind in ("submitted", "retry", "handoff"):
                later.append(o)
            else:
                rejected = o.kind == "rejected"
                self._finish(
                    o.sms_uid, MessageState.REJECTED if rejected else MessageState.FAILED,
                    now_ms, result, detail=o.detail,
                    result_desc=LOCAL_REJECTED if rejected else None,
                    refund=o.kind in _REFUNDED, connector_id=o.connector_id, claimer=claimer,
                )  # fmt: skip
        for kind in ("submitted", "retry", "handoff"):
            for o in (o for o in later if o.kind == kind):
                row = self._mine(o.sms_uid, claimer)
                if kind == "retry":
                    result.requeued += 1
                elif kind == "handoff":
                    result.handed_off += 1
                if row is None:
                    continue
                m = row.m
                if kind == "submitted":
                    m.update(state=MessageState.SUBMITTED, connector_id=o.connector_id,
                             submitted_ms=now_ms, updated_ms=now_ms)  # fmt: skip
                elif kind == "retry":
                    m.update(state=MessageState.ACCEPTED, send_at_ms=o.retry_at_ms or now_ms,
                             detail=clip_detail(o.detail), updated_ms=now_ms)  # fmt: skip
                else:
                    m.update(state=MessageState.ACCEPTED, attempts=m["attempts"] - 1)
                    row.via_connector, row.claimed_by = o.connector_id, None
        for o in outcomes:
            if o.kind != "submitted":
                continue
            for part in o.parts:
                if o.sms_uid in self._messages and (o.sms_uid, part.seq) not in self._parts:
                    self._parts[(o.sms_uid, part.seq)] = _Part(
                        o.connector_id, part.carrier_id, part.status, now_ms
                    )
                if part.carrier_id is not None and o.connector_id is not None:
                    new_ids.add((o.connector_id, part.carrier_id))
        return new_ids

    def _apply_receipts(
        self, events: Sequence[ReceiptEvent], now_ms: int, result: DispatchResult
    ) -> None:
        if not events:
            return
        index = {(p.connector_id, p.carrier_id): key for key, p in self._parts.items()}
        touched: dict[str, ReceiptEvent] = {}
        for e in events:
            key = index.get((e.connector_id, e.carrier_id))
            self._receipts.append(
                {"id": next(self._ids), "connector_id": e.connector_id,
                 "carrier_id": e.carrier_id, "stat": e.stat, "err": e.err,
                 "sms_uid": key[0] if key else None, "raw": e.raw, "received_ms": e.report_ms}
            )  # fmt: skip
            if key is None:
                result.unmatched += 1
                continue
            result.matched += 1
            part = self._parts[key]
            part.receipt_stat, part.receipt_err, part.done_ms = e.stat, e.err, e.report_ms
            touched[key[0]] = e
        for uid, event in touched.items():
            m = self._messages[uid].m
            if m["state"] in FINAL_STATES:
                continue  # recorded, never re-decided (rule 4 of cloudsms.domain.dlr)
            segments = m["segments"]
            seen = (
                [_stat_state(p.receipt_stat) for (u, _), p in self._parts.items() if u == uid]
                if segments > 1
                else [_stat_state(event.stat)]
            )
            outcome = message_outcome(segments, seen)
            if outcome is not None:
                final = FINAL_MESSAGE_STATE[outcome]
                report = NewReport.final(
                    sms_uid=uid, customer_id=m["customer_id"], state=final,
                    result_desc=outcome.name, report_ms=event.report_ms,
                )  # fmt: skip
                m.update(state=final, sms_state=report.sms_state, result_desc=report.result_desc,
                         final_ms=event.report_ms, updated_ms=now_ms)  # fmt: skip
                self._add_report(report, now_ms, guarded=True)
                result.reported.append(uid)
            elif event.sms_state in INTERMEDIATE:
                m.update(sms_state=int(event.sms_state), updated_ms=now_ms)
                report = NewReport(
                    sms_uid=uid, customer_id=m["customer_id"], sms_state=int(event.sms_state),
                    result_desc=event.sms_state.name, report_ms=event.report_ms,
                )  # fmt: skip
                if self._add_report(report, now_ms, guarded=True):
                    result.reported.append(uid)

    def _finish(
        self, uid: str, final: MessageState, now_ms: int, result: DispatchResult, *,
        detail: str | None, result_desc: str | None, refund: bool, connector_id: int | None,
        claimer: int | None,
    ) -> None:  # fmt: skip
        row = self._messages.get(uid)
        if row is None or row.m["state"] in FINAL_STATES:
            return
        if claimer is not None and self._mine(uid, claimer) is None:
            return
        m = row.m
        report = NewReport.final(
            sms_uid=uid, customer_id=m["customer_id"], state=final, result_desc=result_desc,
            report_ms=now_ms,
        )  # fmt: skip
        m.update(state=final, sms_state=report.sms_state, result_desc=report.result_desc,
                 final_ms=now_ms, updated_ms=now_ms)  # fmt: skip
        if detail is not None:
            m["detail"] = clip_detail(detail)
        if connector_id is not None:
            m["connector_id"] = connector_id
        if refund and m["fee_micros"]:
            self._customers[m["customer_id"]].balance_micros += m["fee_micros"]
            m["fee_micros"] = 0
        if self._add_report(report, now_ms, guarded=True):
            result.reported.append(uid)

    # -- connector status -------------------------------------------------------------------

    def write_connector_status(self, rows: Sequence[ConnectorStatus]) -> int:
        with self._lock:
            now = self.now_ms()
            kept = [r for r in rows if r.connector_id in self._connectors]
            for r in kept:
                self._status[r.connector_id] = replace(r, updated_ms=r.updated_ms or now)
            return len(kept)

    def connector_statuses(self) -> list[ConnectorStatus]:
        with self._lock:
            out = []
            for c in sorted(self._connectors.values(), key=lambda c: c.name):
                s = self._status.get(c.id)
                if s is None:
                    s = ConnectorStatus(connector_id=c.id, window_size=c.window,
                                        state="down" if c.enabled else "disabled")  # fmt: skip
                out.append(replace(s, name=c.name, enabled=c.enabled))
            return out


def _past_deadline(row: _Message, now_ms: int) -> bool:
    """Past its own deadline (SMPP validity_period): the expiry job's, never sent."""
    expires = row.m.get("expires_ms")
    return expires is not None and expires <= now_ms


_NEW_FIELDS = (
    "sms_uid", "customer_id", "serial", "country_code", "dest_msisdn", "route_name", "sender",
    "content", "encoding", "segments", "priority", "send_at_ms", "customer_body", "state",
    "result_desc", "detail", "fee_micros", "currency", "created_ms", "expires_ms",
    "smpp_message_id",
)  # fmt: skip
_CLAIM_FIELDS = (
    "sms_uid", "customer_id", "country_code", "dest_msisdn", "route_name", "sender", "content",
    "encoding", "segments", "priority", "attempts", "fee_micros", "expires_ms",
)  # fmt: skip


def vars_of(part: _Part) -> dict[str, object]:
    return {
        "connector_id": part.connector_id, "carrier_id": part.carrier_id,
        "submit_status": part.submit_status, "receipt_stat": part.receipt_stat,
        "receipt_err": part.receipt_err, "submitted_ms": part.submitted_ms,
        "done_ms": part.done_ms,
    }  # fmt: skip


def _receipt_event(row: Mapping[str, Any]) -> ReceiptEvent:
    return ReceiptEvent(
        connector_id=row["connector_id"], carrier_id=row["carrier_id"],
        sms_state=_stat_state(row["stat"]) or SmsState.UNKNOWN, stat=row["stat"],
        err=row["err"], report_ms=row["received_ms"], raw=row["raw"],
    )  # fmt: skip


__all__ = ["MemoryStore"]


if TYPE_CHECKING:  # both stores implement every pipeline protocol (mypy checks this)
    from cloudsms.storage.interfaces import OptOutStore, PipelineStore, SmppMoStore
    from cloudsms.storage.store import Store

    def _memory_conforms(store: MemoryStore) -> PipelineStore:
        return store

    def _memory_smpp_mo_conforms(store: MemoryStore) -> SmppMoStore:
        return store

    def _sql_conforms(store: Store) -> PipelineStore:
        return store

    def _memory_opt_outs_conform(store: MemoryStore) -> OptOutStore:
        return store

    def _sql_opt_outs_conform(store: Store) -> OptOutStore:
        return store
