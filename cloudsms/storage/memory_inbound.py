"""The memory store's inbound messages: ``storage.inbound_ops`` on plain Python data.

Same rules as the SQL store (pinned by ``tests/integration/test_store_contract.py``): redeliveries
dropped by dedup key within the window, parts held until whole, routing by inbound number and
keyword, reply matching and default customer, opt-out keywords applied with the MO (the
lists of ``MemoryOptOuts``), and the MO push outbox's claim / outcome rules.
Inbound numbers are set with :meth:`MemoryInbound.add_inbound_number` (no operator side here).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from cloudsms.domain.inbound import (
    DueMo,
    InboundArrival,
    InboundOutcome,
    InboundPart,
    InboundRecord,
    assemble,
    choose_route,
    dedup_key,
    first_word,
    number_key,
)
from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OptAction, opt_change
from cloudsms.domain.pipeline import ReportResult
from cloudsms.domain.smpp_accounts import SmppMo
from cloudsms.storage.memory_opt_out import MemoryOptOuts
from cloudsms.storage.memory_state import MemoryReports


@dataclass(slots=True)
class _Mo:
    record: InboundRecord
    dedup_key: str
    next_attempt_ms: int
    claimed_by: int | None = None


@dataclass(slots=True)
class _InboundTables:
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    parts: dict[tuple[int, str, str, str], dict[int, tuple[int, bytes, int]]] = field(
        default_factory=dict
    )
    mos: dict[int, _Mo] = field(default_factory=dict)
    mo_urls: dict[int, str] = field(default_factory=dict)
    #: Customers with an enabled SMPP account taking MOs (the SQL store reads smpp_accounts).
    smpp_mo_customers: set[int] = field(default_factory=set)


class MemoryInbound(MemoryReports, MemoryOptOuts):
    """Inbound messages in memory (see the module docstring)."""

    def __init__(self, *, clock: Callable[[], int] | None = None) -> None:
        if clock is None:
            super().__init__()
        else:
            super().__init__(clock=clock)
        self._inbound = _InboundTables()

    def add_inbound_number(self, number: str, keyword: str, customer: int | str) -> None:
        """Give ``number`` (for ``keyword``, "" for any) to a customer (id or name)."""
        with self._lock:
            cid = customer if isinstance(customer, int) else next(
                c for c, row in self._customers.items() if row.info.name == customer
            )  # fmt: skip
            self._inbound.numbers[(number_key(number), keyword.upper())] = cid

    def set_mo_url(self, customer_id: int, url: str | None) -> None:
        with self._lock:
            if url is None:
                self._inbound.mo_urls.pop(customer_id, None)
            else:
                self._inbound.mo_urls[customer_id] = url

    def set_smpp_mo(self, customer_id: int, on: bool = True) -> None:
        """Whether the customer has an enabled SMPP account taking MOs (no accounts here); off,
        its MOs pending for SMPP go to HTTP, as the SQL store does when its last one goes."""
        with self._lock:
            if on:
                self._inbound.smpp_mo_customers.add(customer_id)
                return
            self._inbound.smpp_mo_customers.discard(customer_id)
            for mo in self._inbound.mos.values():
                r = mo.record
                if (r.customer_id, r.channel, r.push_state) == (customer_id, "smpp", "pending"):
                    mo.record = replace(r, channel="http")

    def inbound_messages(self) -> list[InboundRecord]:
        """Every stored MO with its push state, oldest first (for tests)."""
        with self._lock:
            return [mo.record for mo in self._inbound.mos.values()]

    def store_inbound(
        self,
        connector_id: int,
        part: InboundPart,
        *,
        mo_uid: str,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = "",
        policies: Mapping[int, CountryPolicy] | None = None,
    ) -> InboundOutcome:
        [outcome] = self.store_inbounds(
            [InboundArrival(connector_id, part, mo_uid)], now_ms=now_ms,
            dedup_window_ms=dedup_window_ms, reply_window_ms=reply_window_ms,
            default_customer=default_customer, policies=policies,
        )  # fmt: skip
        return outcome

    def store_inbounds(
        self,
        arrivals: Sequence[InboundArrival],
        *,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = "",
        policies: Mapping[int, CountryPolicy] | None = None,
    ) -> list[InboundOutcome]:
        with self._lock:
            outcomes = [
                self._store_one(a.connector_id, a.part, mo_uid=a.mo_uid, now_ms=now_ms,
                                dedup_window_ms=dedup_window_ms, reply_window_ms=reply_window_ms,
                                default_customer=default_customer)
                for a in arrivals
            ]  # fmt: skip
            if policies is None:
                return outcomes
            return [self._apply_opt(o, policies) for o in outcomes]

    def _apply_opt(
        self, outcome: InboundOutcome, policies: Mapping[int, CountryPolicy]
    ) -> InboundOutcome:
        mo = outcome.record
        if mo is None or mo.customer_id is None:
            return outcome
        change = opt_change(mo.source, mo.text, policies)
        if change is None:
            return outcome
        if change.action is OptAction.OPT_OUT:
            self.add_opt_out(mo.customer_id, change.number, via="keyword", keyword=change.keyword)
        else:
            self.remove_opt_out(mo.customer_id, change.number)
        return replace(outcome, opt=change)

    def _store_one(
        self,
        connector_id: int,
        part: InboundPart,
        *,
        mo_uid: str,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str,
    ) -> InboundOutcome:
        tables = self._inbound
        since = now_ms - dedup_window_ms

        def seen(key: str) -> bool:
            return any(
                mo.dedup_key == key and mo.record.received_ms >= since for mo in tables.mos.values()
            )

        parts = 1
        if part.concat is not None:
            key = dedup_key(connector_id, part, "")
            if seen(key):
                return InboundOutcome(status="duplicate")
            ref, total, seq = part.concat
            group_key = (
                connector_id, part.source, part.destination,
                f"{part.concat_kind}:{ref}/{total}",
            )  # fmt: skip
            group = tables.parts.setdefault(group_key, {})
            if seq in group:
                return InboundOutcome(status="duplicate")
            group[seq] = (part.data_coding, part.data, now_ms)
            if len(group) < total:
                return InboundOutcome(status="waiting")
            del tables.parts[group_key]
            coding = group[1][0]
            text = assemble([(s, data) for s, (_, data, _) in group.items()], coding)
            parts = total
        else:
            coding = part.data_coding
            text = assemble([(1, part.data)], coding)
            key = dedup_key(connector_id, part, text)
            if seen(key):
                return InboundOutcome(status="duplicate")
        keyword = first_word(text)
        dest = number_key(part.destination)
        by_number = {kw: cid for (num, kw), cid in tables.numbers.items() if num == dest}
        reply = (
            self._replied_by(part, now_ms - reply_window_ms)
            if reply_window_ms > 0 and not by_number
            else None
        )
        default = next(
            (c for c, row in self._customers.items() if row.info.name == default_customer),
            None,
        )
        customer_id, routed_by = choose_route(keyword, by_number, reply, default)
        record = InboundRecord(
            id=next(self._ids), mo_uid=mo_uid, connector_id=connector_id,
            source=part.source, destination=part.destination, text=text, data_coding=coding,
            parts=parts, keyword=keyword, customer_id=customer_id, routed_by=routed_by,
            received_ms=now_ms, push_state="unrouted" if customer_id is None else "pending",
            channel="smpp" if customer_id in tables.smpp_mo_customers else "http",
        )  # fmt: skip
        tables.mos[record.id] = _Mo(record, key, now_ms)
        return InboundOutcome(status="stored", record=record)

    def drop_stale_inbound_parts(self, older_than_ms: int) -> int:
        with self._lock:
            parts = self._inbound.parts
            stale = [k for k, group in parts.items()
                     if max(at for _, _, at in group.values()) < older_than_ms]  # fmt: skip
            return sum(len(parts.pop(k)) for k in stale)

    def _replied_by(self, part: InboundPart, since_ms: int) -> int | None:
        source, dest = number_key(part.source), number_key(part.destination)
        senders = {dest, "+" + dest, part.destination}
        best: tuple[int, int] | None = None
        for msg in self._messages.values():
            m = msg.m
            if (
                m["created_ms"] >= since_ms
                and m["sender"] in senders
                and f"{m['country_code']}{m['dest_msisdn']}" == source
                and (best is None or m["created_ms"] > best[0])
            ):
                best = (m["created_ms"], m["customer_id"])
        return best[1] if best is not None else None

    def customer_inbound(
        self, customer_id: int, since_mo_uid: str | None = None, limit: int = 100
    ) -> list[InboundRecord]:
        with self._lock:
            mine = [mo.record for mo in self._inbound.mos.values()
                    if mo.record.customer_id == customer_id]  # fmt: skip
            after = next((r.id for r in mine if r.mo_uid == since_mo_uid), 0)
            return [r for r in mine if r.id > after][:limit]

    def claim_due_mo(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 120_000,
        exclude_customers: Collection[int] = (),
        claimer: int | None = None,
        hold_ms: int = 0,
    ) -> list[DueMo]:
        with self._lock:
            tables = self._inbound
            due: list[tuple[_Mo, str | None]] = []
            for mo in sorted(tables.mos.values(), key=lambda x: (x.next_attempt_ms, x.record.id)):
                r = mo.record
                if r.push_state != "pending" or mo.next_attempt_ms > now_ms:
                    continue
                if r.channel != "http":
                    continue
                if r.customer_id is None or r.customer_id in exclude_customers:
                    continue
                customer = self._customers.get(r.customer_id)
                if customer is None:
                    continue
                url = tables.mo_urls.get(r.customer_id) or customer.info.callback_url
                if url is None and r.received_ms > now_ms - hold_ms:
                    continue
                due.append((mo, url))
                if len(due) >= limit:
                    break
            out = []
            for mo, url in due:
                r = mo.record
                assert r.customer_id is not None
                customer = self._customers[r.customer_id]
                out.append(
                    DueMo(
                        id=r.id, mo_uid=r.mo_uid, customer_id=r.customer_id,
                        auth_key=customer.info.auth_key,
                        serial=self._take_serials(r.customer_id, 1)[0], callback_url=url,
                        callback_ca_pem=customer.callback_ca_pem, source=r.source,
                        destination=r.destination, text=r.text, parts=r.parts,
                        keyword=r.keyword, received_ms=r.received_ms, created_ms=r.received_ms,
                        attempts=r.attempts, next_attempt_ms=mo.next_attempt_ms,
                    )
                )  # fmt: skip
                mo.next_attempt_ms, mo.claimed_by = now_ms + lease_ms, claimer
            return out

    def record_mo_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        with self._lock:
            mos = self._inbound.mos
            for res in results:
                mo = mos.get(res.id)
                if mo is None or mo.record.push_state != "pending":
                    continue
                r = mo.record
                attempts = r.attempts + int(res.attempted)
                mo.claimed_by = None
                if res.outcome == "done":
                    mo.record = replace(r, push_state="done", attempts=attempts, last_error="")
                elif res.outcome == "give_up":
                    mo.record = replace(r, push_state="failed", attempts=attempts,
                                        last_error=res.error)  # fmt: skip
                else:
                    mo.next_attempt_ms = res.next_attempt_ms
                    error = res.error[:1000] if res.outcome == "retry" else r.last_error
                    mo.record = replace(r, attempts=attempts, last_error=error)
            for customer_id, until in (defer or {}).items():
                for mo in mos.values():
                    if (
                        mo.record.customer_id == customer_id
                        and mo.record.push_state == "pending"
                        and mo.record.channel == "http"
                        and mo.claimed_by is None
                        and mo.next_attempt_ms < until
                    ):
                        mo.next_attempt_ms = until

    # ------------------------------------------------------------------ MOs over SMPP sessions

    def claim_smpp_mo(
        self, customer_ids: Sequence[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppMo]:
        with self._lock:
            wanted = set(customer_ids)
            due = sorted(
                (
                    mo for mo in self._inbound.mos.values()
                    if mo.record.channel == "smpp" and mo.record.push_state == "pending"
                    and mo.next_attempt_ms <= now_ms and mo.record.customer_id in wanted
                ),
                key=lambda x: (x.next_attempt_ms, x.record.id),
            )[: max(limit, 0)]  # fmt: skip
            out = []
            for mo in due:
                r = mo.record
                assert r.customer_id is not None
                out.append(
                    SmppMo(
                        outbox_id=r.id, mo_uid=r.mo_uid, customer_id=r.customer_id,
                        source=r.source, destination=r.destination, text=r.text,
                        attempts=r.attempts,
                    )
                )  # fmt: skip
                mo.next_attempt_ms = now_ms + lease_ms
            return out

    def record_smpp_mo(
        self,
        *,
        now_ms: int,
        done: Sequence[int] = (),
        retry: Sequence[tuple[int, int, str]] = (),
    ) -> None:
        with self._lock:
            mos = self._inbound.mos
            for outbox_id in done:
                mo = mos.get(outbox_id)
                if mo is not None and mo.record.push_state == "pending":
                    mo.record = replace(mo.record, push_state="done",
                                        attempts=mo.record.attempts + 1, last_error="")  # fmt: skip
            for outbox_id, next_ms, error in retry:
                mo = mos.get(outbox_id)
                if mo is not None and mo.record.push_state == "pending":
                    mo.next_attempt_ms = next_ms
                    mo.record = replace(mo.record, attempts=mo.record.attempts + 1,
                                        last_error=error[:1000])  # fmt: skip
