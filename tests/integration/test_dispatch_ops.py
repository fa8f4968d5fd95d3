"""The carrier side of the store on both engines: claims, outcomes, receipts and their races."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from seed import Seeded, seed_customer
from sqlalchemy import event, select, update
from store_data import accept, now

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import (
    NewReport,
    PartResult,
    ReceiptEvent,
    ReportClaim,
    ReportResult,
    SubmitOutcome,
)
from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.store import Store


def receipt(carrier_id: str, state: SmsState, stat: str, connector: int = 1) -> ReceiptEvent:
    return ReceiptEvent(connector_id=connector, carrier_id=carrier_id, sms_state=state,
                        stat=stat, err="000", report_ms=now())  # fmt: skip


def outbox(store: Store) -> list[tuple[str, int, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                tables.report_outbox.c.sms_uid,
                tables.report_outbox.c.sms_state,
                tables.report_outbox.c.result_desc,
            ).order_by(tables.report_outbox.c.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def seeded(store: Store) -> Seeded:
    return seed_customer(store.engine)


def test_claim_order_and_schedule(store: Store, seeded: Seeded) -> None:
    accept(store, seeded, ["A1", "A2"])
    accept(store, seeded, ["B1"], priority=1)
    accept(store, seeded, ["C1"], send_at=now() + 3_600_000)
    claimed = store.claim_due(now(), 10)
    assert [m.sms_uid for m in claimed] == ["B1", "A1", "A2"]
    assert all(m.attempts == 1 for m in claimed)
    assert store.claim_due(now(), 10) == []
    assert store.get_message("A1").state == MessageState.QUEUED  # type: ignore[union-attr]
    assert store.recover_in_flight() == 3
    assert len(store.claim_due(now(), 2)) == 2


def test_submitted_then_delivered_reports_once(store: Store, seeded: Seeded) -> None:
    accept(store, seeded, ["M1"])
    store.claim_due(now(), 10)
    result = store.record_dispatch(
        [SubmitOutcome(sms_uid="M1", kind="submitted", connector_id=1,
                       parts=(PartResult(1, "abc", 0),))],
        [receipt("abc", SmsState.DELIVERED, "DELIVRD")],
        now(),
    )  # fmt: skip
    assert (result.matched, result.unmatched, result.reported) == (1, 0, ["M1"])
    message = store.get_message("M1")
    assert message is not None and message.state == MessageState.DELIVERED
    assert message.sms_state == 2 and message.result_desc == "DELIVERED"
    # A duplicate receipt is recorded but changes nothing and reports nothing.
    again = store.record_dispatch([], [receipt("abc", SmsState.UNDELIVERABLE, "UNDELIV")], now())
    assert again.reported == []
    assert store.get_message("M1").state == MessageState.DELIVERED  # type: ignore[union-attr]
    assert outbox(store) == [("M1", 2, "DELIVERED")]


def message_row(store: Store, uid: str) -> Any:
    m = tables.messages.c
    with store.engine.connect() as conn:
        return conn.execute(
            select(m.state, m.connector_id, m.carrier_id, m.submitted_ms, m.receipt_stat,
                   m.receipt_err, m.final_ms, m.sms_state).where(m.sms_uid == uid)
        ).one()  # fmt: skip


def test_a_submit_and_its_receipt_in_one_batch_update_the_message_once(
    store: Store, seeded: Seeded
) -> None:
    """The carrier answered within the group commit: one UPDATE, the same row as two would make."""
    accept(store, seeded, ["G1", "G2"])
    store.set_callback_url(seeded.customer_id, "http://127.0.0.1:9/reports")
    worker = store.register_worker(name="w", host="test", pid=1, role="worker", lease_ms=60_000)
    store.claim_due(now(), 10, claimer=worker)
    connector = store.list_connectors()[0].id
    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            updates.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        result = store.record_dispatch(
            [SubmitOutcome(sms_uid=uid, kind="submitted", connector_id=connector,
                           parts=(PartResult(1, f"id-{uid}", 0),)) for uid in ("G1", "G2")],
            [receipt(f"id-{uid}", state, stat, connector)
             for uid, state, stat in [("G1", SmsState.DELIVERED, "DELIVRD"),
                                      ("G2", SmsState.UNDELIVERABLE, "UNDELIV")]],
            now(), claimer=worker,
            report_claim=ReportClaim(claimer=worker, limit=10, lease_ms=60_000, hold_ms=60_000),
        )  # fmt: skip
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(updates) == 1, updates
    assert (result.matched, result.unmatched) == (2, 0)
    assert sorted(r.sms_uid for r in result.claimed_reports) == ["G1", "G2"]
    g1, g2 = message_row(store, "G1"), message_row(store, "G2")
    assert (g1.state, g1.connector_id, g1.carrier_id, g1.receipt_stat, g1.sms_state) == (
        "delivered",
        connector,
        "id-G1",
        "DELIVRD",
        2,
    )
    assert (g2.state, g2.carrier_id, g2.receipt_stat, g2.receipt_err) == (
        "undeliverable",
        "id-G2",
        "UNDELIV",
        "000",
    )
    assert g1.submitted_ms is not None and g1.final_ms is not None
    assert sorted(outbox(store)) == [("G1", 2, "DELIVERED"), ("G2", 5, "UNDELIVERABLE")]


def submitted(uid: str, connector: int) -> SubmitOutcome:
    """One submit_sm accepted by the carrier, whose id is ``id-`` + the SMS_UID."""
    return SubmitOutcome(sms_uid=uid, kind="submitted", connector_id=connector,
                         parts=(PartResult(1, f"id-{uid}", 0),))  # fmt: skip


def test_reports_claimed_with_their_receipt_are_what_the_pushers_claim_reads(
    store: Store, seeded: Seeded
) -> None:
    """The dispatch transaction builds the claim of the reports it writes from what it read
    (the message, the customer's callback), not by reading them back: every field is what the
    pusher's own claim reads for the same report, and the SERIALs follow on."""
    body = '{"ORDER": "A-17"}'
    accept(store, seeded, ["H1", "H2"], customer_body=body)
    store.set_callback_url(seeded.customer_id, "http://127.0.0.1:9/reports")
    worker = store.register_worker(name="w", host="test", pid=1, role="worker", lease_ms=60_000)
    store.claim_due(now(), 10, claimer=worker)
    connector = store.list_connectors()[0].id
    claim = ReportClaim(claimer=worker, limit=10, lease_ms=60_000, hold_ms=60_000)
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM report_outbox" in statement and statement.lstrip().startswith("SELECT"):
            reads.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        # H1's submit and receipt in one batch (the joint UPDATE); H2's receipt in the next.
        first = store.record_dispatch(
            [submitted("H1", connector), submitted("H2", connector)],
            [receipt("id-H1", SmsState.DELIVERED, "DELIVRD", connector)],
            now(), claimer=worker, report_claim=claim,
        )  # fmt: skip
        second = store.record_dispatch(
            [], [receipt("id-H2", SmsState.UNDELIVERABLE, "UNDELIV", connector)], now(),
            report_claim=claim,
        )  # fmt: skip
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert reads == []  # nothing read back from the outbox
    built = [*first.claimed_reports, *second.claimed_reports]
    assert [(r.sms_uid, r.sms_state, r.serial) for r in built] == [("H1", 2, 1), ("H2", 5, 2)]
    assert all(r.customer_body == body and r.attempts == 0 for r in built)
    # Given back, then claimed by the pusher's own claim, which reads them from the store.
    store.record_report_results(
        [ReportResult(r.id, "release", r.next_attempt_ms, attempted=False) for r in built],
        now_ms=now(),
    )
    read = {r.sms_uid: r for r in store.claim_due_reports(now(), 10, claimer=worker)}
    assert [read[r.sms_uid].serial for r in built] == [3, 4]
    for r in built:
        assert replace(r, serial=0) == replace(read[r.sms_uid], serial=0)


def test_a_final_report_after_a_pending_one_is_not_claimed_with_its_receipt(
    store: Store, seeded: Seeded
) -> None:
    """A report waits for the earlier reports of its SMS_UID: written while one is pending (an
    intermediate state the customer asked for), it is not claimed by the receipt's transaction
    but written due, and the pusher's claim takes it once the earlier one is done."""
    accept(store, seeded, ["E1"])
    store.set_callback_url(seeded.customer_id, "http://127.0.0.1:9/reports")
    worker = store.register_worker(name="w", host="test", pid=1, role="worker", lease_ms=60_000)
    store.claim_due(now(), 10, claimer=worker)
    connector = store.list_connectors()[0].id
    store.record_dispatch([submitted("E1", connector)], [], now(), claimer=worker)
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(report_intermediate=True))
        store.enqueue_reports(
            conn,
            [NewReport(sms_uid="E1", customer_id=seeded.customer_id, sms_state=1,
                       result_desc="ENROUTE", report_ms=now())],
            now_ms=now(),
        )  # fmt: skip
    claim = ReportClaim(claimer=worker, limit=10, lease_ms=60_000, hold_ms=60_000)
    result = store.record_dispatch(
        [], [receipt("id-E1", SmsState.DELIVERED, "DELIVRD", connector)], now(),
        report_claim=claim,
    )  # fmt: skip
    assert result.reported == ["E1"] and result.claimed_reports == []
    [enroute] = store.claim_due_reports(now(), 10, claimer=worker)
    assert enroute.sms_state == 1
    store.record_report_results([ReportResult(enroute.id, "done")], now_ms=now())
    [delivered] = store.claim_due_reports(now(), 10, claimer=worker)
    assert (delivered.sms_uid, delivered.sms_state) == ("E1", 2)


def test_reports_of_a_customer_without_a_callback_are_held_not_claimed_with_their_receipt(
    store: Store, seeded: Seeded
) -> None:
    """No callback URL: the receipt's transaction does not claim the report; the pusher's
    claim holds it for the retry window (pushed once a URL is set)."""
    accept(store, seeded, ["N1"])
    store.set_callback_url(seeded.customer_id, None)
    worker = store.register_worker(name="w", host="test", pid=1, role="worker", lease_ms=60_000)
    store.claim_due(now(), 10, claimer=worker)
    connector = store.list_connectors()[0].id
    claim = ReportClaim(claimer=worker, limit=10, lease_ms=60_000, hold_ms=60_000)
    result = store.record_dispatch(
        [submitted("N1", connector)], [receipt("id-N1", SmsState.DELIVERED, "DELIVRD", connector)],
        now(), claimer=worker, report_claim=claim,
    )  # fmt: skip
    assert result.reported == ["N1"] and result.claimed_reports == []
    assert store.claim_due_reports(now(), 10, claimer=worker) == []  # held
    store.set_callback_url(seeded.customer_id, "http://127.0.0.1:9/reports")
    [report] = store.claim_due_reports(now(), 10, claimer=worker)
    assert report.sms_uid == "N1" and report.callback_url == "http://127.0.0.1:9/reports"


def test_a_submit_and_its_receipt_after_a_lost_claim_go_the_usual_way(
    store: Store, seeded: Seeded
) -> None:
    """The joint UPDATE does not apply (another worker holds the claim): the carrier id is kept
    and the receipt still decides the message, as when they come in two batches."""
    accept(store, seeded, ["L1"])
    heir = store.register_worker(name="h", host="test", pid=1, role="worker", lease_ms=60_000)
    zombie = store.register_worker(name="z", host="test", pid=2, role="worker", lease_ms=60_000)
    store.claim_due(now(), 10, claimer=heir)
    connector = store.list_connectors()[0].id
    result = store.record_dispatch(
        [SubmitOutcome(sms_uid="L1", kind="submitted", connector_id=connector,
                       parts=(PartResult(1, "zombie-id", 0),))],
        [receipt("zombie-id", SmsState.DELIVERED, "DELIVRD", connector)],
        now(), claimer=zombie,
    )  # fmt: skip
    assert result.matched == 1 and result.reported == ["L1"]
    row = message_row(store, "L1")
    assert (row.state, row.carrier_id, row.submitted_ms) == ("delivered", "zombie-id", None)
    assert outbox(store) == [("L1", 2, "DELIVERED")]


def test_receipt_before_mapping_waits_then_applies(store: Store, seeded: Seeded) -> None:
    accept(store, seeded, ["R1"])
    store.claim_due(now(), 10)
    early = store.record_dispatch([], [receipt("x-1", SmsState.DELIVERED, "DELIVRD")], now())
    assert (early.matched, early.unmatched) == (0, 1)
    assert len(store.unmatched_receipts()) == 1
    late = store.record_dispatch(
        [SubmitOutcome(sms_uid="R1", kind="submitted", connector_id=1,
                       parts=(PartResult(1, "x-1", 0),))],
        [], now(),
    )  # fmt: skip
    assert late.matched == 1 and late.reported == ["R1"]
    assert store.get_message("R1").state == MessageState.DELIVERED  # type: ignore[union-attr]
    assert store.unmatched_receipts() == []


def test_multipart_needs_every_segment(store: Store, seeded: Seeded) -> None:
    accept(store, seeded, ["L1", "L2"], segments=2)
    store.claim_due(now(), 10)
    store.record_dispatch(
        [SubmitOutcome(sms_uid=u, kind="submitted", connector_id=1,
                       parts=(PartResult(1, f"{u}-a", 0), PartResult(2, f"{u}-b", 0)))
         for u in ("L1", "L2")],
        [receipt("L1-a", SmsState.DELIVERED, "DELIVRD"),
         receipt("L2-a", SmsState.DELIVERED, "DELIVRD"),
         receipt("L2-b", SmsState.UNDELIVERABLE, "UNDELIV")],
        now(),
    )  # fmt: skip
    assert store.get_message("L1").state == MessageState.SUBMITTED  # type: ignore[union-attr]
    assert store.get_message("L2").state == MessageState.UNDELIVERABLE  # type: ignore[union-attr]
    store.record_dispatch([], [receipt("L1-b", SmsState.DELIVERED, "DELIVRD")], now())
    assert store.get_message("L1").state == MessageState.DELIVERED  # type: ignore[union-attr]
    assert [p["seq"] for p in store.parts_of("L1")] == [1, 2]


def test_failed_retry_and_rejected_with_refund(store: Store, seeded: Seeded) -> None:
    accept(store, seeded, ["F1", "T1", "X1"])
    before = store.customer_balance(seeded.customer_id)
    store.claim_due(now(), 10)
    store.record_dispatch(
        [
            SubmitOutcome(sms_uid="F1", kind="failed", connector_id=1,
                          detail="carrier status 0x0000000B"),
            SubmitOutcome(sms_uid="T1", kind="retry", retry_at_ms=now() + 60_000,
                          detail="throttled"),
            SubmitOutcome(sms_uid="X1", kind="rejected", detail="no_carrier"),
        ],
        [], now(),
    )  # fmt: skip
    failed = store.get_message("F1")
    assert failed is not None and failed.state == MessageState.FAILED
    assert failed.detail == "carrier status 0x0000000B" and failed.fee_micros == 50_000
    retry = store.get_message("T1")
    assert retry is not None and retry.state == MessageState.ACCEPTED
    assert retry.send_at_ms > now() + 50_000
    rejected = store.get_message("X1")
    assert rejected is not None and rejected.state == MessageState.REJECTED
    assert rejected.result_desc == "LOCAL_REJECTED" and rejected.fee_micros == 0
    assert store.customer_balance(seeded.customer_id) == before + 50_000
    assert sorted(outbox(store)) == [("F1", 5, "UNDELIVERABLE"), ("X1", 8, "LOCAL_REJECTED")]


def test_long_details_are_clipped_not_a_poison_batch(store: Store, seeded: Seeded) -> None:
    """Outcome details are free text (library and carrier messages). Over the column's width,
    PostgreSQL refused the whole batch, and the recorder retried it for ever."""
    accept(store, seeded, ["U1", "T1"])
    store.claim_due(now(), 10)
    long = "cannot be sent: SubmitSm: source_addr is longer than 20 characters (SMPP 3.4 §5.2)"
    store.record_dispatch(
        [SubmitOutcome(sms_uid="U1", kind="unsendable", connector_id=1, detail=long),
         SubmitOutcome(sms_uid="T1", kind="retry", retry_at_ms=now(), detail="x" * 300)],
        [], now(),
    )  # fmt: skip
    unsendable, retried = store.get_message("U1"), store.get_message("T1")
    assert unsendable is not None and unsendable.state == MessageState.FAILED
    assert unsendable.fee_micros == 0 and unsendable.detail == long[:63] + "…"
    assert retried is not None and retried.detail == "x" * 63 + "…"


def test_claims_skip_the_disk_flush_but_leave_the_connection_durable(
    store: Store, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim commits without a flush (durable=False); the pooled connection it used is put
    back to synchronous=FULL, so the accept path that reuses it still flushes every commit."""
    if store.dialect != "sqlite":
        pytest.skip("SQLite's per-connection synchronous setting")
    accept(store, seeded, ["D1"])

    def checkout() -> tuple[int, int]:
        with store.engine.connect() as conn:
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
            return id(conn.connection.dbapi_connection), int(level)

    before, level = checkout()
    assert level == 2  # FULL
    seen: list[int] = []
    pool: Any = store.engine.pool
    original = pool._do_get

    def tracking_get() -> Any:
        record = original()
        seen.append(id(record.dbapi_connection))
        return record

    monkeypatch.setattr(pool, "_do_get", tracking_get)
    claimed = store.claim_due(now(), 10)
    monkeypatch.undo()
    assert [m.sms_uid for m in claimed] == ["D1"]
    assert seen == [before]  # the claim ran on the connection checked below
    after, level = checkout()
    assert (after, level) == (before, 2)
