"""The pipeline protocols' contract, run on every store: MemoryStore, SQLite and PostgreSQL.

Each test uses only the operations of ``cloudsms.storage.interfaces`` (plus a few shared reads:
``get_message``, ``customer_balance``, ``unmatched_receipts``, ``report_counts``), so what passes
here on the SQL store must pass on the memory store that unit tests and benchmarks rely on.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from seed import seed_customer
from sqlalchemy import event, select

from cloudsms.domain.codes import LOCAL_REJECTED, SmsState
from cloudsms.domain.inbound import InboundArrival, InboundOutcome, InboundPart
from cloudsms.domain.models import CountryPolicy, NewMessage, PacketWrite
from cloudsms.domain.pipeline import (
    LocalClaim,
    PartResult,
    ReceiptEvent,
    ReportClaim,
    ReportResult,
    SubmitOutcome,
)
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import NotFound
from cloudsms.storage import tables
from cloudsms.storage.memory import MemoryStore
from cloudsms.storage.report_ops import take_serials
from cloudsms.storage.store import Store

FEE = 50_000
_uids = itertools.count(1)


def now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    sql = Store.open(url)
    try:
        yield sql
    finally:
        sql.close()


@dataclass
class World:
    store: Any
    customer_id: int
    connector_id: int
    route: str = "main"

    def accept(
        self,
        n: int = 1,
        *,
        key: str | None = None,
        at: int | None = None,
        segments: int = 1,
        sender: str = "CloudSMS",
        expires_ms: int | None = None,
    ) -> list[str]:
        stamp = now() if at is None else at
        uids = [f"U{next(_uids):08d}" for _ in range(n)]
        messages = tuple(
            NewMessage(
                sms_uid=uid, customer_id=self.customer_id, serial=1, country_code=852,
                dest_msisdn=f"6700{i:04d}", route_name=self.route, sender=sender,
                content="hello", encoding="gsm7", segments=segments, priority=0,
                send_at_ms=stamp, customer_body=None, state=MessageState.ACCEPTED,
                result_desc=None, detail=None, fee_micros=FEE, currency="HKD", created_ms=stamp,
                expires_ms=expires_ms,
            )
            for i, uid in enumerate(uids)
        )  # fmt: skip
        write = PacketWrite(customer_id=self.customer_id, packet_key=key, messages=messages,
                            answer=f"answer {uids[0]}".encode(), created_ms=stamp)  # fmt: skip
        [outcome] = self.store.accept_packets([write], replay_window_ms=60_000)
        return [] if outcome.replayed else uids

    def state(self, uid: str) -> MessageState:
        record = self.store.get_message(uid)
        assert record is not None
        return record.state  # type: ignore[no-any-return]

    def submitted(self, uid: str, *carrier_ids: str, claimer: int | None = None) -> Any:
        parts = tuple(PartResult(i, cid, 0) for i, cid in enumerate(carrier_ids, start=1))
        outcome = SubmitOutcome(sms_uid=uid, kind="submitted", connector_id=self.connector_id,
                                parts=parts)  # fmt: skip
        return self.store.record_dispatch([outcome], [], now(), claimer=claimer)

    def delivered(self, carrier_id: str) -> ReceiptEvent:
        """A DELIVRD receipt of this world's connector for ``carrier_id`` (not yet recorded)."""
        return ReceiptEvent(connector_id=self.connector_id, carrier_id=carrier_id,
                            sms_state=SmsState.DELIVERED, stat="DELIVRD", err="000",
                            report_ms=now())  # fmt: skip

    def receipt(self, carrier_id: str, stat: str = "DELIVRD") -> Any:
        event = ReceiptEvent(connector_id=self.connector_id, carrier_id=carrier_id,
                             sms_state=SmsState.DELIVERED if stat == "DELIVRD"
                             else SmsState.UNDELIVERABLE, stat=stat, err="000",
                             report_ms=now())  # fmt: skip
        return self.store.record_dispatch([], [event], now())


def make_world(store: Any, *, balance: int = 10 * FEE, credit: int = 0) -> World:
    if isinstance(store, MemoryStore):
        cid = store.add_customer(balance_micros=balance, credit_limit_micros=credit)
        route = store.add_route("main")
        connector = ConnectorConfig(id=1, name="carrier-1", host="127.0.0.1", port=9,
                                    system_id="cloudsms", password="secret")  # fmt: skip
        return World(store, cid, store.add_connector(connector, route=route))
    seeded = seed_customer(store.engine, balance_micros=balance, credit_limit_micros=credit,
                           route="main", callback_url="http://127.0.0.1:9/dr")  # fmt: skip
    with store.engine.connect() as conn:
        connector_id = conn.scalar(select(tables.connectors.c.id))
    return World(store, seeded.customer_id, int(connector_id))


@pytest.fixture
def world(store: Any) -> World:
    return make_world(store)


def test_one_message_through_the_pipeline(world: World) -> None:
    store = world.store
    [uid] = world.accept()
    assert store.customer_balance(world.customer_id) == 9 * FEE
    assert store.backlog_by_customer() == {world.customer_id: 1}
    assert [m.sms_uid for m in store.customer_messages(world.customer_id, [uid, "nope"])] == [uid]
    assert store.customer_messages(world.customer_id + 1, [uid]) == []

    [claimed] = store.claim_due(now(), 10)
    assert (claimed.sms_uid, claimed.attempts, claimed.fee_micros) == (uid, 1, FEE)
    assert world.state(uid) is MessageState.QUEUED
    assert store.claim_due(now(), 10) == []

    world.submitted(uid, "C1")
    assert world.state(uid) is MessageState.SUBMITTED
    assert store.backlog_by_customer() == {}
    result = world.receipt("C1")
    assert (result.matched, result.unmatched, result.reported) == (1, 0, [uid])
    assert world.state(uid) is MessageState.DELIVERED

    [report] = store.claim_due_reports(now(), 10, claimer=None)
    assert (report.sms_uid, report.sms_state, report.result_desc) == (uid, 2, "DELIVERED")
    assert report.serial == 1 and report.attempts == 0
    assert store.claim_due_reports(now(), 10) == []  # leased
    store.record_report_results([ReportResult(report.id, "done")], now_ms=now())
    counts = store.report_counts()
    assert (counts.pending, counts.done, counts.given_up) == (0, 1, 0)


def test_messages_claimed_at_acceptance_skip_the_claim(world: World) -> None:
    """LocalClaim: due messages are written QUEUED under the claimer, up to the limit; a
    scheduled one and the rest stay ACCEPTED for the claim query."""
    store = world.store
    me = store.register_worker(name="me", host="h", pid=1, role="all", lease_ms=60_000)
    stamp = now()
    messages = tuple(
        NewMessage(
            sms_uid=f"L{next(_uids):08d}", customer_id=world.customer_id, serial=1,
            country_code=852, dest_msisdn=f"6800{i:04d}", route_name=world.route,
            sender="CloudSMS", content="hello", encoding="gsm7", segments=1, priority=0,
            send_at_ms=stamp + (3_600_000 if i == 0 else 0), customer_body=None,
            state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=FEE,
            currency="HKD", created_ms=stamp,
        )
        for i in range(4)
    )  # fmt: skip
    write = PacketWrite(customer_id=world.customer_id, packet_key=None, messages=messages,
                        answer=b"{}", created_ms=stamp)  # fmt: skip
    [outcome] = store.accept_packets([write], replay_window_ms=0, claim=LocalClaim(me, 2))
    scheduled, first, second, third = (m.sms_uid for m in messages)
    assert [(m.sms_uid, m.attempts, m.fee_micros) for m in outcome.claimed] == [
        (first, 1, FEE), (second, 1, FEE)
    ]  # fmt: skip
    assert [world.state(u) for u in (scheduled, first, second, third)] == [
        MessageState.ACCEPTED, MessageState.QUEUED, MessageState.QUEUED, MessageState.ACCEPTED
    ]  # fmt: skip
    assert store.customer_balance(world.customer_id) == 6 * FEE
    assert [m.sms_uid for m in store.claim_due(now(), 10)] == [third]
    # The claim is ours: our outcome applies, another claimer's does not.
    other = SubmitOutcome(sms_uid=first, kind="submitted", connector_id=world.connector_id,
                          parts=(PartResult(1, "X1", 0),))  # fmt: skip
    store.record_dispatch([other], [], now(), claimer=me + 1)
    assert world.state(first) is MessageState.QUEUED
    store.record_dispatch([other], [], now(), claimer=me)
    assert world.state(first) is MessageState.SUBMITTED


def test_reports_claimed_in_the_dispatch_transaction(world: World) -> None:
    """ReportClaim: the receipt's transaction enqueues the report and claims it (lease, SERIAL);
    the pusher's own claim does not find it again; up to the limit."""
    store = world.store
    me = store.register_worker(name="me", host="h", pid=1, role="all", lease_ms=60_000)
    uids = world.accept(3)
    store.claim_due(now(), 10)
    for n, uid in enumerate(uids):
        world.submitted(uid, f"R{n}")
    events = [world.delivered(f"R{n}") for n in range(3)]
    claim = ReportClaim(claimer=me, limit=2, lease_ms=60_000, hold_ms=60_000)
    result = store.record_dispatch([], events, now(), report_claim=claim)
    assert sorted(result.reported) == sorted(uids)
    claimed = result.claimed_reports
    assert len(claimed) == 2 and {r.sms_uid for r in claimed} < set(uids)
    assert sorted(r.serial for r in claimed) == [1, 2]
    assert all(r.result_desc == "DELIVERED" and r.attempts == 0 for r in claimed)
    # The third is left to the pusher's own claim; the two claimed are leased.
    [rest] = store.claim_due_reports(now(), 10, claimer=me)
    assert rest.sms_uid not in {r.sms_uid for r in claimed} and rest.serial == 3
    store.record_report_results([ReportResult(r.id, "done") for r in (*claimed, rest)],
                                now_ms=now())  # fmt: skip
    counts = store.report_counts()
    assert (counts.pending, counts.done) == (0, 3)


def test_a_dispatch_transaction_claims_each_customers_reports_up_to_its_room(
    world: World,
) -> None:
    """ReportClaim.customer_room: a customer whose pusher queue has room for one gets one
    report claimed; one without room gets none (left in the outbox, due, for the pusher's own
    claim), so nothing is claimed only to be released again."""
    store = world.store
    me = store.register_worker(name="me", host="h", pid=1, role="all", lease_ms=60_000)
    uids = world.accept(4)
    store.claim_due(now(), 10)
    for n, uid in enumerate(uids):
        world.submitted(uid, f"Q{n}")

    def claim(room: int) -> ReportClaim:
        return ReportClaim(claimer=me, limit=10, lease_ms=60_000, hold_ms=60_000,
                           customer_room={world.customer_id: room})  # fmt: skip

    one = store.record_dispatch(
        [], [world.delivered("Q0"), world.delivered("Q1")], now(), report_claim=claim(1)
    )
    assert len(one.reported) == 2 and len(one.claimed_reports) == 1
    none = store.record_dispatch(
        [], [world.delivered("Q2"), world.delivered("Q3")], now(), report_claim=claim(0)
    )
    assert len(none.reported) == 2 and none.claimed_reports == []
    left = store.claim_due_reports(now(), 10, claimer=me)
    claimed = {one.claimed_reports[0].sms_uid}
    assert sorted(r.sms_uid for r in left) == sorted(set(uids) - claimed)


def test_a_report_claimed_in_the_dispatch_transaction_and_released_is_due_at_once(
    world: World,
) -> None:
    """The pusher gives back what it has no room for ("release", to the report's own due time):
    a report claimed in the receipt's transaction is due again at once, not when the lease it
    was written with runs out (a 45 s stall of the side-by-side harness, fixed)."""
    store = world.store
    me = store.register_worker(name="me", host="h", pid=1, role="all", lease_ms=60_000)
    [uid] = world.accept()
    store.claim_due(now(), 10)
    world.submitted(uid, "R9")
    event = ReceiptEvent(
        connector_id=world.connector_id, carrier_id="R9", sms_state=SmsState.DELIVERED,
        stat="DELIVRD", err="000", report_ms=now(),
    )  # fmt: skip
    at = now()
    claim = ReportClaim(claimer=me, limit=5, lease_ms=600_000, hold_ms=60_000)
    [report] = store.record_dispatch([], [event], at, report_claim=claim).claimed_reports
    assert report.next_attempt_ms <= at
    released = ReportResult(report.id, "release", report.next_attempt_ms, attempted=False)
    store.record_report_results([released], now_ms=now())
    assert [r.id for r in store.claim_due_reports(now(), 10, claimer=me)] == [report.id]


def test_a_second_receipt_never_reports_twice(world: World) -> None:
    [uid] = world.accept()
    world.store.claim_due(now(), 10)
    world.submitted(uid, "C2")
    world.receipt("C2")
    again = world.receipt("C2", "UNDELIV")
    assert again.matched == 1 and again.reported == []
    assert world.state(uid) is MessageState.DELIVERED
    assert len(world.store.claim_due_reports(now(), 10)) == 1


def test_replays_return_the_stored_answer_and_store_nothing(world: World) -> None:
    store = world.store
    stamp = now()
    first = world.accept(2, key="packet-1", at=stamp)
    assert world.accept(2, key="packet-1", at=stamp + 1000) == []  # a replay: nothing new
    assert store.customer_balance(world.customer_id) == 8 * FEE
    assert store.backlog_by_customer() == {world.customer_id: 2}
    # Past the window, the same key is a new packet.
    assert len(world.accept(1, key="packet-1", at=stamp + 61_000)) == 1
    assert len(first) == 2


def test_running_out_of_balance_rejects_locally_and_reports(store: Any) -> None:
    world = make_world(store, balance=FEE, credit=FEE)  # room for two messages
    uids = [m for _ in range(3) for m in world.accept()]
    assert store.customer_balance(world.customer_id) == -FEE
    assert [world.state(u) for u in uids] == [MessageState.ACCEPTED] * 2 + [MessageState.REJECTED]
    [report] = store.claim_due_reports(now(), 10)
    assert (report.sms_uid, report.sms_state, report.result_desc) == (uids[2], 8, LOCAL_REJECTED)
    assert report.fee_micros == 0


def test_a_receipt_before_its_submit_response_waits_and_is_matched(world: World) -> None:
    [uid] = world.accept()
    world.store.claim_due(now(), 10)
    early = world.receipt("C3")
    assert (early.matched, early.unmatched) == (0, 1)
    assert [r["carrier_id"] for r in world.store.unmatched_receipts()] == ["C3"]
    result = world.submitted(uid, "C3")
    assert result.matched == 1 and result.reported == [uid]
    assert world.state(uid) is MessageState.DELIVERED
    assert world.store.unmatched_receipts() == []


def test_a_long_message_is_delivered_when_every_segment_is(world: World) -> None:
    [uid] = world.accept(segments=2)
    world.store.claim_due(now(), 10)
    world.submitted(uid, "P1", "P2")
    assert world.receipt("P1").reported == []
    assert world.state(uid) is MessageState.SUBMITTED
    assert world.receipt("P2").reported == [uid]
    assert world.state(uid) is MessageState.DELIVERED


def test_retry_then_failure_then_unsendable_refund(world: World) -> None:
    store = world.store
    a, b = world.accept(2)
    store.claim_due(now(), 10)
    retry = SubmitOutcome(sms_uid=a, kind="retry", retry_at_ms=now() - 1, detail="throttled")
    failed = SubmitOutcome(sms_uid=b, kind="failed", connector_id=world.connector_id,
                           detail="carrier status 0x00000045")  # fmt: skip
    result = store.record_dispatch([retry, failed], [], now())
    assert result.requeued == 1 and result.reported == [b]
    assert world.state(a) is MessageState.ACCEPTED and world.state(b) is MessageState.FAILED
    [again] = store.claim_due(now(), 10)
    assert (again.sms_uid, again.attempts) == (a, 2)
    unsendable = SubmitOutcome(sms_uid=a, kind="unsendable", connector_id=world.connector_id,
                               detail="cannot be sent")  # fmt: skip
    store.record_dispatch([unsendable], [], now())
    assert world.state(a) is MessageState.FAILED
    assert store.customer_balance(world.customer_id) == 9 * FEE  # a refunded, b not
    reports = store.claim_due_reports(now(), 10)
    assert sorted((r.sms_uid, r.result_desc) for r in reports) == sorted(
        [(a, "UNDELIVERABLE"), (b, "UNDELIVERABLE")]
    )


def test_a_retry_in_the_future_is_not_due(world: World) -> None:
    [uid] = world.accept()
    world.store.claim_due(now(), 10)
    later = SubmitOutcome(sms_uid=uid, kind="retry", retry_at_ms=now() + 60_000)
    world.store.record_dispatch([later], [], now())
    assert world.store.claim_due(now(), 10) == []
    assert [m.sms_uid for m in world.store.claim_due(now() + 61_000, 10)] == [uid]


def test_outcomes_of_a_fenced_claimer_apply_to_nothing(world: World) -> None:
    store = world.store
    w1 = store.register_worker(name="w1", host="h", pid=1, role="worker", lease_ms=60_000)
    [uid] = world.accept()
    store.claim_due(now(), 10, claimer=w1)
    world.submitted(uid, "C4", claimer=w1 + 100)
    assert world.state(uid) is MessageState.QUEUED
    world.submitted(uid, "C4", claimer=w1)
    assert world.state(uid) is MessageState.SUBMITTED


def test_handoff_goes_to_the_connector_owner(world: World) -> None:
    store = world.store
    cid = world.connector_id
    w1 = store.register_worker(name="w1", host="h", pid=1, role="worker", lease_ms=60_000)
    w2 = store.register_worker(name="w2", host="h", pid=2, role="worker", lease_ms=60_000)
    [uid] = world.accept()
    store.claim_due(now(), 10, claimer=w1)
    handoff = SubmitOutcome(sms_uid=uid, kind="handoff", connector_id=cid)
    assert store.record_dispatch([handoff], [], now(), claimer=w1).handed_off == 1
    assert world.state(uid) is MessageState.ACCEPTED
    assert store.claim_due(now(), 10, claimer=w1, leave_to={cid}) == []
    handed = store.claim_handed_off(now(), w2, {cid: 5})
    assert [(m.sms_uid, m.attempts) for m in handed[cid]] == [(uid, 1)]
    world.submitted(uid, "C5", claimer=w2)
    assert world.state(uid) is MessageState.SUBMITTED


def test_claims_of_a_dead_worker_are_recovered(world: World) -> None:
    store = world.store
    dead = store.register_worker(name="dead", host="h", pid=1, role="worker", lease_ms=100)
    live = store.register_worker(name="live", host="h", pid=2, role="worker", lease_ms=60_000)
    a, b = world.accept(2)
    store.claim_due(now(), 1, claimer=dead)
    store.claim_due(now(), 1, claimer=live)
    assert store.recover_in_flight() == 0
    store.claim_due(now(), 10)  # nothing left
    # The first message's report: claimed by the dead worker too.
    store.record_dispatch([SubmitOutcome(sms_uid=a, kind="rejected", detail="no route")], [], now())
    [report] = store.claim_due_reports(now(), 10, claimer=dead)
    time.sleep(0.2)
    assert store.recover_in_flight() == 0  # a is final; b is the live worker's
    assert world.state(b) is MessageState.QUEUED
    assert store.recover_claimed_reports(now()) == 1
    assert [r.id for r in store.claim_due_reports(now(), 10)] == [report.id]
    assert [w.name for w in store.list_workers(live_only=True)] == ["live"]


def test_a_retired_workers_id_is_never_given_again_so_its_claims_come_back(world: World) -> None:
    # A worker that stops cleanly deletes its row; what it left QUEUED under its claim (a
    # packet still in the pipe from the API process) must not pass for a live worker's claim
    # when the next worker registers (SQLite reused the largest id before schema 0016).
    store = world.store
    first = store.register_worker(name="first", host="h", pid=1, role="worker", lease_ms=60_000)
    [uid] = world.accept()
    [claimed] = store.claim_due(now(), 10, claimer=first)
    store.retire_worker(first)
    second = store.register_worker(name="second", host="h", pid=2, role="worker", lease_ms=60_000)
    assert second > first
    assert store.recover_in_flight() == 1
    assert world.state(uid) is MessageState.ACCEPTED
    assert [m.sms_uid for m in store.claim_due(now(), 10, claimer=second)] == [claimed.sms_uid]


def test_an_unclaimed_dead_claim_goes_back_to_the_queue(world: World) -> None:
    store = world.store
    dead = store.register_worker(name="dead", host="h", pid=1, role="worker", lease_ms=100)
    [uid] = world.accept()
    store.claim_due(now(), 10, claimer=dead)
    time.sleep(0.2)
    assert store.recover_in_flight() == 1
    assert world.state(uid) is MessageState.ACCEPTED
    assert [m.attempts for m in store.claim_due(now(), 10)] == [2]


def test_report_retry_give_up_and_serials(world: World) -> None:
    store = world.store
    a, b = world.accept(2)
    store.claim_due(now(), 10)
    world.submitted(a, "R1")
    world.submitted(b, "R2")
    world.receipt("R1")
    world.receipt("R2")
    first = store.claim_due_reports(now(), 10)
    assert sorted(r.serial for r in first) == [1, 2]
    retry_at = now() + 60_000
    by_uid = {r.sms_uid: r for r in first}
    store.record_report_results(
        [ReportResult(by_uid[a].id, "retry", retry_at, "HTTP 500"),
         ReportResult(by_uid[b].id, "give_up", error="HTTP 400")],
        now_ms=now(),
    )  # fmt: skip
    assert store.claim_due_reports(now(), 10) == []
    [again] = store.claim_due_reports(retry_at, 10)
    assert (again.sms_uid, again.attempts, again.serial) == (a, 1, 3)
    counts = store.report_counts(now_ms=retry_at)
    assert (counts.pending, counts.given_up) == (1, 1)


def test_expiry_reports_expired_once(world: World) -> None:
    store = world.store
    [uid] = world.accept()
    store.claim_due(now(), 10)
    world.submitted(uid, "E1")
    assert store.expire_overdue(now() + 10, 60_000) == 0
    later = now() + 120_000
    assert store.expire_overdue(later, 60_000) == 1
    assert world.state(uid) is MessageState.EXPIRED
    assert world.receipt("E1").reported == []  # a late receipt changes nothing
    [report] = store.claim_due_reports(later, 10)
    assert (report.sms_uid, report.result_desc) == (uid, "EXPIRED")


def test_a_message_past_its_own_deadline_is_never_sent_and_expires(world: World) -> None:
    """SMPP validity_period (``expires_ms``): waiting for a carrier or for its receipt, a message
    is EXPIRED once its deadline comes, long before the platform's own expiry."""
    store = world.store
    deadline = now() + 1_000
    sent, waiting = world.accept(2, expires_ms=deadline)
    [plain] = world.accept()
    assert [m.sms_uid for m in store.claim_due(now(), 1)] == [sent]
    world.submitted(sent, "V1")
    later = deadline + 1
    assert [m.sms_uid for m in store.claim_due(later, 10)] == [plain]  # not the past one
    assert store.expire_overdue(later, 25 * 3_600_000) == 2
    assert (world.state(sent), world.state(waiting)) == (MessageState.EXPIRED,) * 2
    assert world.state(plain) is MessageState.QUEUED
    reports = store.claim_due_reports(later, 10)
    assert sorted((r.sms_uid, r.result_desc) for r in reports) == sorted(
        [(sent, "EXPIRED"), (waiting, "EXPIRED")]
    )
    assert store.expire_overdue(later + 1, 25 * 3_600_000) == 0


def test_connector_leases(world: World) -> None:
    store = world.store
    cid = world.connector_id
    w1 = store.register_worker(name="w1", host="h", pid=1, role="worker", lease_ms=60_000)
    w2 = store.register_worker(name="w2", host="h", pid=2, role="worker", lease_ms=60_000)
    assert store.acquire_connectors(w1, [cid, 999], 60_000, limit=5) == [cid]
    assert store.acquire_connectors(w2, [cid], 60_000, limit=5) == []
    assert store.renew_leases(w1, 60_000, {cid: True})
    view = store.lease_view()
    assert [w.name for w in view.workers] == ["w1", "w2"]
    assert (view.leases[cid].owner, view.leases[cid].available) == (w1, True)
    store.release_connectors(w1, [cid])
    assert store.acquire_connectors(w2, [cid], 60_000, limit=5) == [cid]
    assert store.expire_workers([w2]) == 1
    assert cid not in store.lease_view().leases
    store.retire_worker(w1)
    assert [w.name for w in store.list_workers()] == ["w2"]


def test_configuration_snapshot_and_routing(world: World) -> None:
    store = world.store
    version = store.config_version()
    assert store.load_snapshot().version == version
    routing = store.load_routing()
    assert routing.select("main", "85267000000", available=lambda c: True) == world.connector_id
    assert world.customer_id in {c.id for c in store.load_snapshot().customers_by_key.values()}


# -- inbound messages (MO) --------------------------------------------------------------------


def _mo(text: bytes, *, src: str = "85261234567", dst: str = "85230001234", coding: int = 0,
        concat: tuple[int, int, int] | None = None) -> InboundPart:  # fmt: skip
    return InboundPart(source=src, destination=dst, data_coding=coding, data=text, concat=concat,
                       concat_kind="udh8" if concat else "")  # fmt: skip


def _keep(world: World, part: InboundPart, **kw: Any) -> InboundOutcome:
    args: dict[str, Any] = {"now_ms": now(), "dedup_window_ms": 60_000, "reply_window_ms": 0}
    return world.store.store_inbound(  # type: ignore[no-any-return]
        world.connector_id, part, mo_uid=f"MO{next(_uids):08d}", **(args | kw)
    )


def test_an_inbound_message_is_stored_once_routed_and_pushed(world: World) -> None:
    store = world.store
    store.add_inbound_number("+852 3000 1234", "", world.customer_id)
    first = _keep(world, _mo(b"Hello there"))
    assert first.status == "stored" and first.record is not None
    mo = first.record
    assert (mo.text, mo.keyword, mo.customer_id, mo.routed_by, mo.push_state) == (
        "Hello there",
        "HELLO",
        world.customer_id,
        "number",
        "pending",
    )
    assert _keep(world, _mo(b"Hello there")).status == "duplicate"  # a redelivered deliver_sm
    second = _keep(world, _mo(b"Second"))
    assert second.record is not None
    mine = store.customer_inbound(world.customer_id)
    assert [m.mo_uid for m in mine] == [mo.mo_uid, second.record.mo_uid]  # MO_QUERY
    assert [m.text for m in store.customer_inbound(world.customer_id, mo.mo_uid)] == ["Second"]
    assert store.customer_inbound(world.customer_id, limit=1) == mine[:1]
    assert store.customer_inbound(world.customer_id + 99) == []
    # the same text long after the window is a new message
    assert _keep(world, _mo(b"Hello there"), now_ms=now() + 120_000).status == "stored"

    due, other = store.claim_due_mo(now(), 10, claimer=None)
    store.record_mo_results([ReportResult(other.id, "done")], now_ms=now())
    assert (due.mo_uid, due.text, due.serial, due.callback_url) == (
        mo.mo_uid,
        "Hello there",
        1,
        "http://127.0.0.1:9/dr",
    )  # mo_url unset: the callback
    assert store.claim_due_mo(now(), 10) == []  # leased
    store.record_mo_results([ReportResult(due.id, "retry", now() - 1, "HTTP 500")], now_ms=now())
    [again] = store.claim_due_mo(now(), 10)
    assert (again.id, again.attempts, again.serial) == (due.id, 1, 3)
    store.record_mo_results([ReportResult(again.id, "done")], now_ms=now())
    [later] = store.claim_due_mo(now() + 10**9, 10)  # only the message after the window
    assert later.id != due.id and later.serial == 4


def test_an_mo_poll_that_finds_nothing_due_writes_nothing(world: World) -> None:
    """The MO pusher polls every 0.2 s: a poll with nothing due is one read and no write
    transaction (on SQLite a write transaction takes the lock ahead of the API's commits)."""
    store = world.store
    if isinstance(store, MemoryStore):
        pytest.skip("the memory store runs no statements")
    store.add_inbound_number("+852 3000 1234", "", world.customer_id)
    arrived = now()
    assert _keep(world, _mo(b"Hello"), now_ms=arrived).status == "stored"
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        assert store.claim_due_mo(arrived - 1, 10) == []  # not due yet
        assert statements == ["SELECT"]
        [claimed] = store.claim_due_mo(arrived, 10)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert claimed.text == "Hello"
    assert "UPDATE" in statements[1:]  # the claim itself still leases the row


def test_inbound_parts_wait_until_whole_and_redeliveries_are_dropped(world: World) -> None:
    store = world.store
    store.add_inbound_number("85230001234", "", world.customer_id)
    text = "你好，世界" * 20  # 100 UCS-2 characters: two parts
    data = text.encode("utf-16-be")
    # a character split across the parts is decoded whole
    one, two = _mo(data[:101], coding=8, concat=(7, 2, 1)), _mo(data[101:], coding=8,
                                                                 concat=(7, 2, 2))  # fmt: skip
    assert _keep(world, two).status == "waiting"
    assert _keep(world, two).status == "duplicate"
    whole = _keep(world, one)
    assert whole.status == "stored" and whole.record is not None
    assert (whole.record.text, whole.record.parts) == (text, 2)
    assert _keep(world, two).status == "duplicate"  # resp of the last part lost: not a new MO
    assert len(store.claim_due_mo(now(), 10)) == 1


def test_inbound_routing_keyword_reply_default_unrouted(world: World) -> None:
    store = world.store
    other = _other_customer(world)
    store.add_inbound_number("1234", "", world.customer_id)
    store.add_inbound_number("1234", "JOIN", other)
    assert _routed(world, _mo(b"join now", dst="1234")) == (other, "keyword")
    assert _routed(world, _mo(b"other", dst="1234")) == (world.customer_id, "number")
    # reply matching: the customer sent to +852 6700 0000 from 85230009999 a minute ago
    world.accept(at=now() - 60_000, sender="85230009999")
    reply = _mo(b"yes", src="85267000000", dst="85230009999")
    assert _routed(world, reply, reply_window_ms=3_600_000) == (world.customer_id, "reply")
    assert _routed(world, _mo(b"yes again", src="85267000000", dst="85230009999"),
                   reply_window_ms=1000) == (None, "unrouted")  # fmt: skip
    assert _routed(world, _mo(b"hi", dst="999"), default_customer=_name(world, other)) == (
        other,
        "default",
    )
    assert _routed(world, _mo(b"hi there", dst="999")) == (None, "unrouted")


def test_a_batch_of_mos_is_stored_in_order_with_its_opt_out_keywords(world: World) -> None:
    """``store_inbounds``: one transaction, each MO seeing those before it; STOP / START change
    the customer's list with it (keywords from the policies passed in), the version moves."""
    store, cid = world.store, world.customer_id
    store.add_inbound_number("85230001234", "", cid)
    cn = CountryPolicy(country_code=86, region="CN", requires_template=False,
                       requires_signature=False, requires_registered_sender=False,
                       sender_format="any", opt_out_keywords=("取消",))  # fmt: skip
    version = store.config_version()

    def arrival(src: str, body: str) -> InboundArrival:
        part = (_mo(body.encode(), src=src) if body.isascii()
                else _mo(body.encode("utf-16-be"), src=src, coding=8))  # fmt: skip
        return InboundArrival(world.connector_id, part, f"MO{next(_uids):08d}")

    outcomes = store.store_inbounds(
        [arrival("+85261234567", "stop"), arrival("+85261234567", "stop"),  # redelivered
         arrival("+8613800138000", "STOP"), arrival("+8613800138001", "取消 thanks"),
         arrival("85261234568", "Hello")],
        now_ms=now(), dedup_window_ms=60_000, reply_window_ms=0, policies={86: cn},
    )  # fmt: skip
    assert [o.status for o in outcomes] == ["stored", "duplicate", "stored", "stored", "stored"]
    assert [o.opt.action.value if o.opt else None for o in outcomes] == [
        "opt_out", None, None, "opt_out", None]  # fmt: skip
    listed = store.list_opt_outs(cid)
    assert [(o.number, o.via, o.keyword) for o in listed] == [
        ("85261234567", "keyword", "stop"), ("8613800138001", "keyword", "取消")]  # fmt: skip
    assert store.config_version() > version
    assert store.load_snapshot().opt_outs_by_customer == {
        cid: frozenset({"85261234567", "8613800138001"})}  # fmt: skip
    # START and STOP again in one batch: applied in order; without policies, no keyword applies
    outcomes = store.store_inbounds(
        [arrival("85261234567", "START"), arrival("8613800138001", "START"),
         arrival("8613800138001", "取消")],
        now_ms=now(), dedup_window_ms=60_000, reply_window_ms=0, policies={86: cn},
    )  # fmt: skip
    assert [o.number for o in store.list_opt_outs(cid)] == ["8613800138001"]
    _keep(world, _mo(b"STOP", src="85261234599"))
    assert [o.number for o in store.list_opt_outs(cid)] == ["8613800138001"]


def test_incomplete_inbound_parts_are_dropped_after_the_window(world: World) -> None:
    store = world.store
    store.add_inbound_number("85230001234", "", world.customer_id)
    t0 = now()
    old = _mo(b"part one of ", concat=(5, 2, 1))
    late = _mo(b"part one of ", concat=(6, 3, 1))
    assert _keep(world, old, now_ms=t0 - 10_000).status == "waiting"
    assert _keep(world, late, now_ms=t0 - 10_000).status == "waiting"
    # message 6 had a part since the cut-off: none of its parts goes
    assert _keep(world, _mo(b"two ", concat=(6, 3, 2)), now_ms=t0).status == "waiting"
    assert store.drop_stale_inbound_parts(t0 - 5_000) == 1
    assert store.drop_stale_inbound_parts(t0 - 5_000) == 0
    # message 5's first part is gone: its last part now waits alone, message 6 completes
    assert _keep(world, _mo(b"the end", concat=(5, 2, 2)), now_ms=t0).status == "waiting"
    whole = _keep(world, _mo(b"three", concat=(6, 3, 3)), now_ms=t0)
    assert whole.record is not None and whole.record.text == "part one of two three"
    assert store.drop_stale_inbound_parts(t0 + 1) == 1


def _routed(world: World, part: InboundPart, **kw: Any) -> tuple[int | None, str]:
    out = _keep(world, part, **kw)
    assert out.record is not None
    return out.record.customer_id, out.record.routed_by


def _other_customer(world: World) -> int:
    if isinstance(world.store, MemoryStore):
        return world.store.add_customer(name="other")  # type: ignore[no-any-return]
    with world.store.engine.begin() as conn:
        return int(conn.execute(tables.customers.insert().values(
            name="other", auth_key="o" * 128, enabled=True, currency="HKD", balance_micros=0,
            credit_limit_micros=0, report_intermediate=False, created_ms=now(), updated_ms=now(),
        )).inserted_primary_key[0])  # fmt: skip


def _name(world: World, customer_id: int) -> str:
    if isinstance(world.store, MemoryStore):
        return world.store._customers[customer_id].info.name  # type: ignore[no-any-return]
    with world.store.engine.connect() as conn:
        return str(conn.scalar(select(tables.customers.c.name).where(
            tables.customers.c.id == customer_id)))  # fmt: skip


def test_opt_out_lists(world: World) -> None:
    """Add, list, remove, idempotent answers, and the snapshot the accept path reads."""
    store, cid = world.store, world.customer_id
    version = store.config_version()
    assert store.add_opt_out(cid, "85261234567", via="keyword", keyword="STOP") is True
    assert store.config_version() > version  # running servers reload within a second
    assert store.add_opt_out(cid, "85261234567", via="operator") is False  # kept as it was
    assert store.add_opt_out(cid, "8613800138000", via="operator") is True
    listed = store.list_opt_outs(cid)
    assert [(o.number, o.via, o.keyword) for o in listed] == [
        ("85261234567", "keyword", "STOP"),
        ("8613800138000", "operator", None),
    ]
    name = listed[0].customer
    assert all(o.customer_id == cid and o.created_ms > 0 for o in listed)
    assert store.list_opt_outs(name) == listed == store.list_opt_outs()
    assert store.load_snapshot().opt_outs_by_customer == {
        cid: frozenset({"85261234567", "8613800138000"})
    }
    assert store.remove_opt_out(name, "85261234567") is True
    assert store.remove_opt_out(cid, "85261234567") is False
    assert store.load_snapshot().opt_outs_by_customer == {cid: frozenset({"8613800138000"})}
    with pytest.raises(NotFound):
        store.add_opt_out("nobody", "85261234567", via="operator")
    with pytest.raises(NotFound):
        store.list_opt_outs(10_000)


def _takes_mo_over_smpp(world: World, customer_id: int) -> None:
    """Give the customer an SMPP account taking MOs (the memory store has no accounts)."""
    if isinstance(world.store, MemoryStore):
        world.store.set_smpp_mo(customer_id)
        return
    world.store.create_smpp_account(customer_id, f"mo{customer_id}", password_hash="x",
                                    binds=frozenset({"trx"}), max_sessions=1, throughput=0,
                                    route="main")  # fmt: skip


def test_an_mo_for_a_customer_taking_mos_over_smpp_is_claimed_only_for_smpp(
    world: World,
) -> None:
    store = world.store
    other = _other_customer(world)
    store.add_inbound_number("85230001234", "", world.customer_id)
    store.add_inbound_number("85230009999", "", other)
    _takes_mo_over_smpp(world, world.customer_id)
    first = _keep(world, _mo(b"Hello over SMPP"))
    second = _keep(world, _mo(b"Second one"))
    plain = _keep(world, _mo(b"Hello over HTTP", dst="85230009999"))
    assert first.record is not None and second.record is not None and plain.record is not None
    assert (first.record.channel, plain.record.channel) == ("smpp", "http")
    # The HTTP pusher's claim takes only the other customer's MO.
    [http] = store.claim_due_mo(now(), 10)
    assert http.id == plain.record.id
    assert store.claim_smpp_mo([other], now_ms=now(), lease_ms=60_000, limit=10) == []
    assert store.claim_smpp_mo([], now_ms=now(), lease_ms=60_000, limit=10) == []
    one, two = store.claim_smpp_mo([world.customer_id], now_ms=now(), lease_ms=60_000, limit=10)
    assert (one.outbox_id, one.mo_uid, one.text, one.source, one.destination, one.attempts) == (
        first.record.id, first.record.mo_uid, "Hello over SMPP", "85261234567", "85230001234", 0,
    )  # fmt: skip
    assert two.outbox_id == second.record.id
    # leased: nobody claims them again meanwhile, not the HTTP side either
    assert store.claim_smpp_mo([world.customer_id], now_ms=now(), lease_ms=60_000, limit=10) == []
    assert [m.id for m in store.claim_due_mo(now() + 10**9, 10)] == [plain.record.id]
    if not isinstance(store, MemoryStore):  # a new MO URL makes waiting HTTP MOs due at once,
        store.set_mo_url(world.customer_id, "http://127.0.0.1:9/mo")  # never cuts a lease
        assert store.claim_smpp_mo([world.customer_id], now_ms=now(), lease_ms=60_000,
                                   limit=10) == []  # fmt: skip
    store.record_smpp_mo(now_ms=now(), done=[one.outbox_id],
                         retry=[(two.outbox_id, now() - 1, "refused (0x00000064)")])  # fmt: skip
    [again] = store.claim_smpp_mo([world.customer_id], now_ms=now(), lease_ms=60_000, limit=1)
    assert (again.outbox_id, again.attempts) == (two.outbox_id, 1)
    store.record_smpp_mo(now_ms=now(), done=[again.outbox_id])
    store.record_smpp_mo(now_ms=now(), retry=[(again.outbox_id, now(), "late")])  # no effect
    assert store.claim_smpp_mo([world.customer_id], now_ms=now() + 10**9, lease_ms=1,
                               limit=10) == []  # fmt: skip
    # The customer's callback is down: its HTTP MOs are deferred, never its SMPP ones.
    third = _keep(world, _mo(b"Third one")).record
    assert third is not None and third.channel == "smpp"
    store.record_mo_results([], now_ms=now(), defer={world.customer_id: now() + 3_600_000})
    [due] = store.claim_smpp_mo([world.customer_id], now_ms=now(), lease_ms=60_000, limit=10)
    assert due.outbox_id == third.id
    store.record_smpp_mo(now_ms=now(), done=[due.outbox_id])
    states = {m.mo_uid: (m.push_state, m.attempts, m.last_error, m.channel)
              for m in store.customer_inbound(world.customer_id)}  # fmt: skip
    assert states == {first.record.mo_uid: ("done", 1, "", "smpp"),
                      second.record.mo_uid: ("done", 2, "", "smpp"),
                      third.mo_uid: ("done", 1, "", "smpp")}  # fmt: skip


def test_smpp_mos_pending_go_to_http_when_the_customer_stops_taking_them(world: World) -> None:
    store = world.store
    store.add_inbound_number("85230001234", "", world.customer_id)
    _takes_mo_over_smpp(world, world.customer_id)
    waiting = _keep(world, _mo(b"Nobody bound yet")).record
    assert waiting is not None and waiting.channel == "smpp"
    assert store.claim_due_mo(now(), 10) == []
    # The customer's last account taking MOs is turned off: nothing could deliver it over SMPP.
    if isinstance(store, MemoryStore):
        store.set_smpp_mo(world.customer_id, False)
    else:
        store.create_smpp_account(world.customer_id, "second", password_hash="x",
                                  binds=frozenset({"rx"}), max_sessions=1, throughput=0,
                                  route="main")  # fmt: skip
        store.set_smpp_account_mo(f"mo{world.customer_id}", False)
        assert store.claim_due_mo(now(), 10) == []  # "second" still takes them
        store.set_smpp_account_enabled("second", False)
    [due] = store.claim_due_mo(now(), 10)
    assert due.id == waiting.id
    assert store.claim_smpp_mo([world.customer_id], now_ms=now() + 10**9, lease_ms=1,
                               limit=10) == []  # fmt: skip
    later = _keep(world, _mo(b"After the switch")).record
    assert later is not None and later.channel == "http"


# -- PostgreSQL row locks ----------------------------------------------------------------------


def test_an_accept_does_not_wait_for_a_transaction_that_references_its_customer(
    postgres_url: str,
) -> None:
    # The worker's dispatch transaction inserts rows that reference the customer (its reports,
    # its SERIAL counter): each takes a KEY SHARE lock on the customer's row until it commits.
    # The accept locks that row for the balance FOR NO KEY UPDATE, which does not conflict;
    # FOR UPDATE did, so every accept waited for the worker's open transaction.
    store = Store.open(postgres_url)
    try:
        world = make_world(store)
        blocker = store.engine.connect()
        try:
            with blocker.begin():
                assert take_serials(blocker, "postgresql", world.customer_id, 3) == [1, 2, 3]
                accepted: list[list[str]] = []
                thread = threading.Thread(target=lambda: accepted.append(world.accept(2)))
                thread.start()
                thread.join(10)
                waited = thread.is_alive()
            thread.join(10)
        finally:
            blocker.close()
        assert not waited, "the accept waited for the open transaction"
        assert [len(uids) for uids in accepted] == [2]
        assert store.next_serial(world.customer_id) == 4
    finally:
        store.close()
