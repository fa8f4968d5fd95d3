"""The carrier side of the store on both engines: claims, outcomes, receipts and their races."""

from __future__ import annotations

from typing import Any

import pytest
from seed import Seeded, seed_customer
from sqlalchemy import event, select
from store_data import accept, now

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import PartResult, ReceiptEvent, ReportClaim, SubmitOutcome
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
