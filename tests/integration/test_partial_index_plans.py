"""The periodic jobs read the live messages through the partial indexes, never the whole table.

Every message the platform ever accepted stays in ``messages`` (until an operator purges it):
millions of rows, of which only the live traffic (queued, awaiting a receipt) concerns the
expiry job (every minute) and the recovery of dead workers' claims (every ten seconds). Both run
in a write transaction, so on SQLite a scan of the table would hold the write lock — and stop
every accept and receipt — for as long as it reads. SQLite uses a partial index only for a
WHERE that contains the index's condition as written (``tables.SUBMITTED_ONLY``, …): these
tests run the jobs through the store, capture the statements they run, and ask SQLite's planner
how it reads ``messages`` for each.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from store_plans import plans_of

from cloudsms.storage.store import Store

#: The planner's rule is SQLite's: the conftest's migrated ``store``, on SQLite only.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _plans_of(store: Store, job: Any) -> list[tuple[str, str]]:
    """(statement, SQLite's plan) for every statement ``job()`` runs on ``messages``."""
    return plans_of(
        store, job, lambda sql: "messages" in sql and not sql.lstrip().upper().startswith("BEGIN")
    )


def _scans_messages(plan: str) -> bool:
    """A step that reads every row of ``messages`` (a SCAN without an index)."""
    return any(step.strip() == "SCAN messages" for step in plan.split("|"))


def test_the_expiry_job_reads_only_messages_awaiting_a_receipt(store: Store) -> None:
    with store.engine.begin() as conn:  # the index must exist as the migrations made it
        assert conn.execute(text(
            "SELECT count(*) FROM sqlite_master WHERE name = 'ix_messages_submitted'"
        )).scalar_one() == 1  # fmt: skip
    plans = _plans_of(store, lambda: store.expire_overdue(store.now_ms(), 3_600_000))
    assert plans, "the expiry job ran no statement on messages"
    overdue = [p for s, p in plans if s.lstrip().upper().startswith("SELECT")]
    assert any("ix_messages_submitted" in p for p in overdue), plans
    assert not any(_scans_messages(p) for _, p in plans), plans


def test_the_recovery_of_dead_claims_reads_only_the_queue(store: Store) -> None:
    [(_, plan)] = _plans_of(store, store.recover_in_flight)
    assert "ix_messages_backlog" in plan, plan
    assert not _scans_messages(plan), plan


def test_the_backlog_gauge_counts_from_its_index(store: Store) -> None:
    """Each API process re-reads the backlog every second (``api.backlog``)."""
    [(_, plan)] = _plans_of(store, store.backlog_by_customer)
    assert "ix_messages_backlog" in plan, plan
    assert not _scans_messages(plan), plan


def test_the_summarys_live_counts_read_their_indexes(store: Store) -> None:
    """The console's and the metrics' backlog and awaiting-receipt counts (every scrape)."""
    plans = _plans_of(store, store.summary)
    backlog = [p for s, p in plans if "'accepted', 'queued'" in s]
    awaiting = [p for s, p in plans if "state = 'submitted'" in s]
    assert len(backlog) == 1 and "ix_messages_backlog" in backlog[0], plans
    assert len(awaiting) == 1 and "ix_messages_submitted" in awaiting[0], plans
    assert not _scans_messages(backlog[0] + " | " + awaiting[0]), plans
