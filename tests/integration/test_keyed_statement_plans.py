"""On PostgreSQL, the hot statements that find rows by key probe the key, never a partial index.

A worker's batch finds its messages and reports by key (SMS_UID, outbox id) and checks a guard
on each (``state IN ('queued')``, ``done_ms IS NULL``). Those guards imply the condition of a
partial index (``ix_messages_backlog``, ``ix_report_outbox_due``), and when the statistics are
stale — always, under load, where the live rows are new since the last ANALYZE — PostgreSQL
estimates that index at a handful of rows and reads all of it, every dead entry included (the
issue-14 harness: 110–154 µs of the server's time per message in one UPDATE). The guards are
written unindexed (``tables.unindexed``); these tests make the statistics stale as load does,
run a worker's batch through the store, and ask the planner how each statement reads. The
receipts' lookup by carrier id is one probe per id too, not a hash join over every id.
"""

from __future__ import annotations

from typing import Any

import pytest
from seed import Seeded, seed_customer
from sqlalchemy import text
from store_data import accept, now
from store_plans import plans_of

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import (
    PartResult,
    ReceiptEvent,
    ReportClaim,
    ReportResult,
    SubmitOutcome,
)
from cloudsms.storage.store import Store

#: SQLite too: it must keep finding these rows by key with the guards written unindexed.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

#: The partial indexes a keyed statement must not read (their rows are the live traffic).
PARTIAL = ("ix_messages_backlog", "ix_messages_submitted", "ix_report_outbox_due")


def _stale_statistics(store: Store, seeded: Seeded) -> None:
    """History the planner knows (final messages, done reports), then new live rows it does not."""
    accept(store, seeded, [f"OLD{i:05d}" for i in range(3000)])
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE messages SET state = 'delivered', final_ms = 1"))
        conn.execute(text(
            "INSERT INTO report_outbox (sms_uid, customer_id, sms_state, result_desc, report_ms,"
            " created_ms, next_attempt_ms, attempts, done_ms) SELECT sms_uid, customer_id, 2,"
            " 'DELIVERED', 1, 1, 1, 1, 2 FROM messages"
        ))  # fmt: skip
        conn.execute(text("ANALYZE messages"))
        conn.execute(text("ANALYZE report_outbox"))


def _hot(statement: str) -> bool:
    """An UPDATE or SELECT on the tables of a worker's batch, or its reports' INSERT (whose
    guards look for the SMS_UID's earlier reports)."""
    head = statement.lstrip().upper()
    hot = "messages" in statement or "report_outbox" in statement
    return hot and head.startswith(("UPDATE", "SELECT", "INSERT INTO REPORT_OUTBOX"))


def test_a_workers_batch_finds_its_messages_and_reports_by_key(store: Store) -> None:
    seeded = seed_customer(store.engine, callback_url="http://127.0.0.1:9/reports")
    _stale_statistics(store, seeded)
    live = [f"NEW{i:03d}" for i in range(60)]
    accept(store, seeded, live)
    worker = store.register_worker(name="w", host="test", pid=1, role="worker", lease_ms=60_000)
    assert len(store.claim_due(now(), 100, claimer=worker)) == 60
    connector = store.list_connectors()[0].id
    claim = ReportClaim(claimer=worker, limit=100, lease_ms=60_000, hold_ms=60_000)
    claimed: list[Any] = []

    def batch() -> None:
        # Half submitted and delivered in one batch (one UPDATE each), half submitted only.
        outcomes = [
            SubmitOutcome(sms_uid=uid, kind="submitted", connector_id=connector,
                          parts=(PartResult(1, f"c-{uid}", 0),))
            for uid in live
        ]  # fmt: skip
        receipts = [
            ReceiptEvent(connector_id=connector, carrier_id=f"c-{uid}",
                         sms_state=SmsState.DELIVERED, stat="DELIVRD", err="000",
                         report_ms=now())
            for uid in live[:30]
        ]  # fmt: skip
        result = store.record_dispatch(
            outcomes, receipts, now(), claimer=worker, report_claim=claim
        )
        claimed.extend(result.claimed_reports)
        # The other half's receipts come in a later batch (the message is SUBMITTED by then).
        later = [
            ReceiptEvent(connector_id=connector, carrier_id=f"c-{uid}",
                         sms_state=SmsState.DELIVERED, stat="DELIVRD", err="000",
                         report_ms=now())
            for uid in live[30:]
        ]  # fmt: skip
        claimed.extend(
            store.record_dispatch(
                [], later, now(), claimer=worker, report_claim=claim
            ).claimed_reports
        )
        store.record_report_results(
            [ReportResult(r.id, "done", 0, "", sms_uid=r.sms_uid, attempted_ms=now(),
                          duration_ms=1, http_status=200, answer="ok") for r in claimed],
            now_ms=now(),
        )  # fmt: skip

    plans = plans_of(store, batch, _hot)
    assert len(claimed) == 60, "every delivered message's report was claimed with its receipt"
    keyed = [(s, p) for s, p in plans if "sms_uid" in s or "report_outbox.id" in s]
    # The submit+receipt UPDATE, the receipts' UPDATE, the reports' INSERT, done.
    assert len(keyed) >= 4, plans
    assert [s for s, _ in keyed if s.lstrip().startswith("INSERT INTO report_outbox")], plans
    wrong = [(s[:120], p) for s, p in keyed if any(index in p for index in PARTIAL)]
    assert not wrong, wrong
    # Receipts find their message by carrier id with one probe each, never a join of every
    # carrier id of the connector (PostgreSQL turned the LATERAL join into that, below).
    lateral = [p for s, p in plans if "LATERAL" in s]
    assert lateral or store.dialect == "sqlite", plans
    assert not [p for p in lateral if "Hash Join" in p], lateral
