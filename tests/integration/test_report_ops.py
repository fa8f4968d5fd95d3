"""The report outbox on real databases (SQLite file and PostgreSQL): ``ReportOps``.

What the pusher and the customers rely on: a report exists exactly when its state change
does, one per state, never two finals; claims are leased (a crash loses nothing), ordered
oldest first and in state order per SMS_UID, shared safely between claimers; serials wrap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update

from cloudsms.domain.codes import LOCAL_REJECTED
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.pipeline import NewReport, ReportResult
from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.report_ops import GAVE_UP, HELD, claim_reports
from cloudsms.storage.store import Store

CustomerFactory = Callable[..., int]
UIDS = UidGenerator()
T0 = 1_764_000_000_000
LEASE = 60_000


@pytest.fixture
def rs(database_url: str, store: Store) -> Iterator[Store]:
    """A store with ReportOps on the same (migrated) database as ``store``."""
    s = Store.open(database_url, migrate=False)
    try:
        yield s
    finally:
        s.close()


def new_message(cid: int, *, state: MessageState = MessageState.ACCEPTED, **kw: Any) -> NewMessage:
    values: dict[str, Any] = {
        "sms_uid": UIDS.next_uid(),
        "customer_id": cid,
        "serial": 1,
        "country_code": 852,
        "dest_msisdn": "91234567",
        "route_name": "r",
        "sender": "CloudSMS",
        "content": "hi",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 0,
        "send_at_ms": T0,
        "customer_body": None,
        "state": state,
        "result_desc": LOCAL_REJECTED if state is MessageState.REJECTED else None,
        "detail": None,
        "fee_micros": 0,
        "currency": "HKD",
        "created_ms": T0,
    }
    values.update(kw)
    return NewMessage(**values)


def store_messages(rs: Store, messages: list[NewMessage]) -> list[str]:
    write = PacketWrite(
        customer_id=messages[0].customer_id,
        packet_key=None,
        messages=tuple(messages),
        answer=b"{}",
        created_ms=T0,
    )
    rs.accept_packets([write], replay_window_ms=0)
    return [m.sms_uid for m in messages]


def enqueue(rs: Store, uid: str, cid: int, state: int, desc: str, now: int = T0) -> bool:
    with rs.engine.begin() as conn:
        return rs.enqueue_report(
            conn,
            sms_uid=uid,
            customer_id=cid,
            sms_state=state,
            result_desc=desc,
            report_ms=now,
            now_ms=now,
        )


def outbox(rs: Store) -> list[Any]:
    o = tables.report_outbox
    with rs.engine.connect() as conn:
        return list(conn.execute(select(o).order_by(o.c.id)))


# ------------------------------------------------------------------------------------ enqueue


def test_enqueue_belongs_to_the_callers_transaction(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer()
    [uid] = store_messages(rs, [new_message(cid)])
    with pytest.raises(RuntimeError), rs.engine.begin() as conn:
        rs.enqueue_report(
            conn,
            sms_uid=uid,
            customer_id=cid,
            sms_state=2,
            result_desc="DELIVERED",
            report_ms=T0,
            now_ms=T0,
        )
        raise RuntimeError("the state change failed")
    assert outbox(rs) == []
    assert enqueue(rs, uid, cid, 2, "DELIVERED")
    [row] = outbox(rs)
    assert (row.sms_uid, row.sms_state, row.result_desc, row.next_attempt_ms) == (
        uid,
        2,
        "DELIVERED",
        T0,
    )


def test_one_report_per_state_and_nothing_after_a_final(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer()
    [uid] = store_messages(rs, [new_message(cid)])
    assert enqueue(rs, uid, cid, 3, "EXPIRED")
    assert not enqueue(rs, uid, cid, 3, "EXPIRED")  # duplicate
    assert not enqueue(rs, uid, cid, 2, "DELIVERED")  # late receipt after EXPIRED
    assert [(r.sms_state, r.result_desc) for r in outbox(rs)] == [(3, "EXPIRED")]


def test_intermediate_states_only_for_customers_who_opted_in(
    rs: Store, add_customer: CustomerFactory
) -> None:
    plain, keen = add_customer(), add_customer()
    with rs.engine.begin() as conn:
        conn.execute(
            update(tables.customers)
            .where(tables.customers.c.id == keen)
            .values(report_intermediate=True)
        )
    [u1] = store_messages(rs, [new_message(plain)])
    [u2] = store_messages(rs, [new_message(keen)])
    assert not enqueue(rs, u1, plain, 1, "ENROUTE")
    assert enqueue(rs, u2, keen, 1, "ENROUTE")
    assert enqueue(rs, u2, keen, 6, "ACCEPTED")
    assert enqueue(rs, u1, plain, 2, "DELIVERED")
    assert [(r.sms_uid, r.sms_state) for r in outbox(rs)] == [(u2, 1), (u2, 6), (u1, 2)]


def test_batch_enqueue_keeps_the_guards(rs: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer()
    uids = store_messages(rs, [new_message(cid) for _ in range(4)])
    batch = [
        NewReport(
            sms_uid=u, customer_id=cid, sms_state=5, result_desc="UNDELIVERABLE", report_ms=T0
        )
        for u in uids
    ]
    with rs.engine.begin() as conn:
        rs.enqueue_reports(conn, batch + batch[:2], now_ms=T0)
        rs.enqueue_reports(conn, [], now_ms=T0)
    assert sorted(r.sms_uid for r in outbox(rs)) == sorted(uids)


def test_batch_of_finals_skips_what_already_has_a_final(
    rs: Store, add_customer: CustomerFactory
) -> None:
    """One row per SMS_UID: the one-statement form (a LATERAL probe per row on PostgreSQL)."""
    cid = add_customer()
    uids = store_messages(rs, [new_message(cid) for _ in range(4)])

    def finals(some: list[str], state: int, desc: str) -> list[NewReport]:
        return [
            NewReport(sms_uid=u, customer_id=cid, sms_state=state, result_desc=desc, report_ms=T0)
            for u in some
        ]

    with rs.engine.begin() as conn:
        rs.enqueue_reports(conn, finals(uids[:2], 2, "DELIVERED"), now_ms=T0)
    with rs.engine.begin() as conn:
        rs.enqueue_reports(conn, finals(uids, 5, "UNDELIVERABLE"), now_ms=T0)
    assert sorted((r.sms_uid, r.sms_state) for r in outbox(rs)) == sorted(
        [(uids[0], 2), (uids[1], 2), (uids[2], 5), (uids[3], 5)]
    )


# --------------------------------------------------------------------------- accept path link


def test_local_rejections_get_their_report_at_acceptance(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=100)
    api_rejected = new_message(cid, state=MessageState.REJECTED, detail="route_unknown")
    paid = new_message(cid, fee_micros=100)
    broke = new_message(cid, fee_micros=1)  # balance exhausted by ``paid``
    store_messages(rs, [api_rejected, paid, broke])
    rows = outbox(rs)
    assert sorted((r.sms_uid, r.sms_state, r.result_desc) for r in rows) == sorted(
        [(api_rejected.sms_uid, 8, "LOCAL_REJECTED"), (broke.sms_uid, 8, "LOCAL_REJECTED")]
    )
    assert all(r.next_attempt_ms == T0 and r.done_ms is None for r in rows)


def test_all_accepted_batches_write_no_report(rs: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**9)
    store_messages(rs, [new_message(cid, fee_micros=5) for _ in range(30)])
    assert outbox(rs) == []


# ------------------------------------------------------------------------------------- claim


def test_claim_orders_by_age_and_by_state_per_sms_uid(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer()
    with rs.engine.begin() as conn:
        conn.execute(update(tables.customers).values(report_intermediate=True))
    a, b = store_messages(rs, [new_message(cid), new_message(cid)])
    enqueue(rs, a, cid, 1, "ENROUTE", now=T0)
    enqueue(rs, b, cid, 2, "DELIVERED", now=T0 + 1)
    enqueue(rs, a, cid, 2, "DELIVERED", now=T0 + 2)

    first = rs.claim_due_reports(T0 + 10, 10, lease_ms=LEASE)
    # a's DELIVERED waits for a's ENROUTE, even though it is due.
    assert [(r.sms_uid, r.sms_state) for r in first] == [(a, 1), (b, 2)]
    # Leased: nothing more is due, the second state still waits for the first.
    assert rs.claim_due_reports(T0 + 20, 10, lease_ms=LEASE) == []
    rs.mark_report_done([first[0].id], T0 + 30)
    [later] = rs.claim_due_reports(T0 + 40, 10, lease_ms=LEASE)
    assert (later.sms_uid, later.sms_state, later.result_desc) == (a, 2, "DELIVERED")
    # The claim carries what the packet needs.
    assert (later.sender, later.country_code, later.dest_msisdn, later.auth_key) == (
        "CloudSMS",
        852,
        "91234567",
        f"{1:0128d}",
    )


def test_lease_expiry_makes_an_unfinished_claim_due_again(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer()
    [uid] = store_messages(rs, [new_message(cid)])
    enqueue(rs, uid, cid, 2, "DELIVERED")
    [claimed] = rs.claim_due_reports(T0, 10, lease_ms=LEASE)
    assert rs.claim_due_reports(T0 + LEASE - 1, 10, lease_ms=LEASE) == []
    [again] = rs.claim_due_reports(T0 + LEASE, 10, lease_ms=LEASE)  # the claimer "crashed"
    assert again.id == claimed.id
    assert again.serial == claimed.serial + 1  # a new packet, a new SERIAL


def test_a_claim_that_finds_nothing_due_writes_nothing(
    rs: Store, add_customer: CustomerFactory
) -> None:
    """The pusher polls the outbox: a poll with nothing due is one read, no write transaction
    (on SQLite it would take the write lock ahead of the API's commits)."""
    cid = add_customer()
    [uid] = store_messages(rs, [new_message(cid)])
    enqueue(rs, uid, cid, 2, "DELIVERED", now=T0 + 1_000)  # due at T0 + 1 s
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split()[0].upper())

    event.listen(rs.engine, "before_cursor_execute", record)
    try:
        assert rs.claim_due_reports(T0, 10, lease_ms=LEASE) == []
        assert statements == ["SELECT"]
        [claimed] = rs.claim_due_reports(T0 + 1_000, 10, lease_ms=LEASE)
    finally:
        event.remove(rs.engine, "before_cursor_execute", record)
    assert claimed.sms_uid == uid
    assert "UPDATE" in statements[1:]  # the claim itself still leases the row


def test_reports_written_claimed_are_read_back_by_their_sms_uids(
    rs: Store, add_customer: CustomerFactory
) -> None:
    """The dispatch transaction reads back the reports it wrote claimed by its pusher: by their
    SMS_UIDs, not by scanning every report that pusher has in flight (on SQLite, the plan must
    not use ``ix_report_outbox_claimed``: with 3,000 in flight that read took 8× as long)."""
    cid = add_customer(callback_url="http://127.0.0.1:9/dr")
    uids = store_messages(rs, [new_message(cid) for _ in range(40)])
    for uid in uids:
        enqueue(rs, uid, cid, 2, "DELIVRD")
    worker = rs.register_worker(name="w", host="t", pid=1, role="worker", lease_ms=60_000)
    o = tables.report_outbox.c
    with rs.engine.begin() as conn:  # all 40 in flight for this worker
        conn.execute(update(tables.report_outbox).values(claimed_by=worker))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(rs.engine, "before_cursor_execute", record)
    try:
        with rs.engine.begin() as conn:
            taken = claim_reports(
                conn, rs.dialect, T0, 10, lease_ms=LEASE, claimer=worker, hold_ms=0,
                sms_uids=uids[-3:], preclaimed=True,
            )  # fmt: skip
    finally:
        event.remove(rs.engine, "before_cursor_execute", record)
    assert sorted(r.sms_uid for r in taken) == sorted(uids[-3:])
    with rs.engine.connect() as conn:  # the others stay in flight, untouched
        still = conn.execute(select(o.sms_uid).where(o.claimed_by == worker)).scalars().all()
    assert len(still) == 40
    if rs.dialect == "sqlite":
        [read] = [s for s in statements if "FROM report_outbox AS o" in s]
        with rs.engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + read, (worker, *sorted(uids[-3:]), uids[-1], 10)
            ))  # fmt: skip
        assert "SEARCH o USING INDEX ix_report_outbox_uid" in plan, plan
        assert "ix_report_outbox_claimed" not in plan, plan


def test_reports_of_a_dead_worker_are_due_again_at_once(
    rs: Store, add_customer: CustomerFactory
) -> None:
    """Claims carry their worker: when its lease runs out, its unfinished reports are due at
    once (not after the report lease); those of live workers and finished ones stay as they are."""
    cid = add_customer()
    uids = store_messages(rs, [new_message(cid) for _ in range(3)])
    for uid in uids:
        enqueue(rs, uid, cid, 2, "DELIVERED")
    live = rs.register_worker(name="live", host="t", pid=1, role="worker", lease_ms=60_000)
    dead = rs.register_worker(name="dead", host="t", pid=2, role="worker", lease_ms=300)
    [mine] = rs.claim_due_reports(T0, 1, lease_ms=LEASE, claimer=live)
    theirs = rs.claim_due_reports(T0, 2, lease_ms=LEASE, claimer=dead)
    assert len(theirs) == 2
    rs.record_report_results([ReportResult(theirs[0].id, "done")], now_ms=T0 + 5)
    assert rs.recover_claimed_reports(T0 + 10) == 0  # everyone alive
    time.sleep(0.5)  # the dead worker stops renewing
    assert rs.recover_claimed_reports(T0 + 10) == 1  # only its unfinished report
    [again] = rs.claim_due_reports(T0 + 10, 10, lease_ms=LEASE, claimer=live)
    assert again.id == theirs[1].id and again.id != mine.id
    assert rs.recover_claimed_reports(T0 + 20) == 0


def test_reports_of_customers_without_a_callback_are_held_for_the_window(
    rs: Store, add_customer: CustomerFactory
) -> None:
    """Guide §9: a report for every accepted SMS_UID. Without a callback URL the claim holds
    it (pending, out of the due range) for the retry window; a URL set meanwhile makes it due
    at once; one older than the window is given up."""
    hour = 3_600_000
    now = rs.now_ms()  # set_callback_url works on the store's clock
    pull = add_customer(callback_url=None)
    push = add_customer()
    quiet, old = store_messages(rs, [new_message(pull, created_ms=now) for _ in range(2)])
    [loud] = store_messages(rs, [new_message(push, created_ms=now)])
    enqueue(rs, quiet, pull, 2, "DELIVERED", now=now)
    enqueue(rs, old, pull, 2, "DELIVERED", now=now - hour)
    enqueue(rs, loud, push, 2, "DELIVERED", now=now)
    claimed = rs.claim_due_reports(now, 10, lease_ms=LEASE, hold_ms=hour)
    assert [r.sms_uid for r in claimed] == [loud]
    rows = {row.sms_uid: row for row in outbox(rs)}
    assert (rows[quiet].done_ms, rows[quiet].attempts, rows[quiet].last_error) == (None, 0, HELD)
    assert rows[quiet].next_attempt_ms == now + hour
    assert rows[old].done_ms == now and rows[old].last_error == GAVE_UP + "no callback_url"
    assert rs.claim_due_reports(now + 1000, 10, lease_ms=LEASE, hold_ms=hour) == []
    rs.set_callback_url(pull, "http://127.0.0.1:9/late")
    [late] = rs.claim_due_reports(rs.now_ms(), 10, lease_ms=LEASE, hold_ms=hour)
    assert (late.sms_uid, late.callback_url) == (quiet, "http://127.0.0.1:9/late")


def test_exclude_customers_and_limit(rs: Store, add_customer: CustomerFactory) -> None:
    busy, other = add_customer(), add_customer()
    for cid in (busy, other):
        for uid in store_messages(rs, [new_message(cid) for _ in range(3)]):
            enqueue(rs, uid, cid, 2, "DELIVERED")
    claimed = rs.claim_due_reports(T0, 10, lease_ms=LEASE, exclude_customers=[busy])
    assert {r.customer_id for r in claimed} == {other} and len(claimed) == 3
    assert len(rs.claim_due_reports(T0, 2, lease_ms=LEASE)) == 2


def test_concurrent_claimers_never_share_a_report(
    rs: Store, add_customer: CustomerFactory, database_url: str
) -> None:
    cid = add_customer()
    for uid in store_messages(rs, [new_message(cid) for _ in range(200)]):
        enqueue(rs, uid, cid, 2, "DELIVERED")
    other = Store.open(database_url, migrate=False)
    got: list[list[int]] = [[], []]

    def claim(s: Store, out: list[int]) -> None:
        while batch := s.claim_due_reports(T0, 7, lease_ms=LEASE):
            out.extend(r.id for r in batch)

    try:
        threads = [
            threading.Thread(target=claim, args=(s, g))
            for s, g in zip((rs, other), got, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        other.close()
    assert sorted(got[0] + got[1]) == sorted(r.id for r in outbox(rs))
    assert not set(got[0]) & set(got[1])


def test_reports_of_vanished_messages_are_given_up(
    rs: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer()
    enqueue(rs, "NOSUCHUID", cid, 2, "DELIVERED")
    assert rs.claim_due_reports(T0, 10, lease_ms=LEASE) == []
    [row] = outbox(rs)
    assert row.done_ms == T0 and row.last_error.startswith(GAVE_UP)


# ----------------------------------------------------------------------------------- serials


def set_serial(rs: Store, customer_id: int, serial: int) -> None:
    """The customer's last report SERIAL, as if that many had been pushed."""
    with rs.engine.begin() as conn:
        conn.execute(
            delete(tables.report_serials).where(tables.report_serials.c.customer_id == customer_id)
        )
        conn.execute(tables.report_serials.insert().values(customer_id=customer_id, serial=serial))


def test_serials_count_per_customer_and_wrap(rs: Store, add_customer: CustomerFactory) -> None:
    a, b = add_customer(), add_customer()
    assert [rs.next_serial(a) for _ in range(3)] == [1, 2, 3]
    assert rs.next_serial(b) == 1
    set_serial(rs, a, 65_535)
    assert rs.next_serial(a) == 1
    set_serial(rs, a, 65_533)
    assert rs.next_serials(a, 5) == [65_534, 65_535, 1, 2, 3]
    assert rs.next_serial(a) == 4
    assert rs.next_serials(a, 0) == []


def test_claim_hands_out_consecutive_serials(rs: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer()
    set_serial(rs, cid, 65_534)
    for uid in store_messages(rs, [new_message(cid) for _ in range(3)]):
        enqueue(rs, uid, cid, 2, "DELIVERED")
    assert [r.serial for r in rs.claim_due_reports(T0, 10, lease_ms=LEASE)] == [65_535, 1, 2]


# ---------------------------------------------------------------------------------- outcomes


def test_outcomes_and_counts(rs: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer()
    uids = store_messages(rs, [new_message(cid) for _ in range(5)])
    for uid in uids:
        enqueue(rs, uid, cid, 2, "DELIVERED")
    ids = [r.id for r in rs.claim_due_reports(T0, 10, lease_ms=LEASE)]
    rs.record_report_results(
        [
            ReportResult(ids[0], "done"),
            ReportResult(ids[1], "retry", T0 + 5_000, "HTTP 500"),
            ReportResult(ids[2], "give_up", error="HTTP 500"),
            ReportResult(ids[3], "release", T0, attempted=False),
        ],
        now_ms=T0 + 1,
    )
    rows = {r.id: r for r in outbox(rs)}
    assert (rows[ids[0]].done_ms, rows[ids[0]].attempts, rows[ids[0]].last_error) == (
        T0 + 1,
        1,
        None,
    )
    assert (rows[ids[1]].next_attempt_ms, rows[ids[1]].attempts, rows[ids[1]].last_error) == (
        T0 + 5_000,
        1,
        "HTTP 500",
    )
    assert rows[ids[2]].done_ms == T0 + 1 and rows[ids[2]].last_error == GAVE_UP + "HTTP 500"
    assert (rows[ids[3]].next_attempt_ms, rows[ids[3]].attempts) == (T0, 0)
    counts = rs.report_counts(now_ms=T0 + 2)
    assert (counts.pending, counts.due, counts.done, counts.given_up) == (3, 1, 1, 1)
    assert counts.oldest_pending_ms == T0
    # A late duplicate outcome never reopens a finished report.
    rs.reschedule_report(ids[0], T0 + 9, "late")
    assert outbox(rs)[0].done_ms == T0 + 1

    # Defer: every pending report of the customer due earlier moves to the given time; one due
    # later (still leased) keeps its time: defer never brings a report forward.
    rs.record_report_results([], now_ms=T0 + 3, defer={cid: T0 + 7_000})
    pending = {r.id: r.next_attempt_ms for r in outbox(rs) if r.done_ms is None}
    assert pending == {ids[1]: T0 + 7_000, ids[3]: T0 + 7_000, ids[4]: T0 + LEASE}
    rs.give_up_report(ids[4], "x")
    assert rs.report_counts(now_ms=T0 + 2).given_up == 2


# ------------------------------------------------------------------------------------ expiry


def test_expire_overdue(rs: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer()
    old, young, done = store_messages(rs, [new_message(cid) for _ in range(3)])
    m = tables.messages
    day = 25 * 3_600_000
    with rs.engine.begin() as conn:
        for uid, submitted in ((old, T0), (young, T0 + 1_000), (done, T0)):
            conn.execute(
                update(m)
                .where(m.c.sms_uid == uid)
                .values(state=MessageState.SUBMITTED.value, submitted_ms=submitted)
            )
        conn.execute(
            update(m).where(m.c.sms_uid == done).values(state=MessageState.DELIVERED.value)
        )
    assert rs.expire_overdue(T0 + day + 500, day) == 1
    record = rs.get_message(old)
    assert record is not None
    assert (record.state, record.sms_state, record.result_desc, record.final_ms) == (
        MessageState.EXPIRED,
        3,
        "EXPIRED",
        T0 + day + 500,
    )
    assert [(r.sms_uid, r.sms_state, r.result_desc) for r in outbox(rs)] == [(old, 3, "EXPIRED")]
    assert rs.expire_overdue(T0 + day + 500, day) == 0
    # A late carrier receipt is not pushed as a second final state.
    assert not enqueue(rs, old, cid, 2, "DELIVERED")
    # Batches: limit respected, the rest on the next call.
    assert rs.expire_overdue(T0 + day + 1_000, day, limit=1) == 1
    assert rs.get_message(young).state is MessageState.EXPIRED  # type: ignore[union-attr]
