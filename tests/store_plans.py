"""The planner's view of the statements a store operation runs, for the plan tests.

Why: a hot statement must stay served by the index meant for it on both engines, whatever the
statistics say (docs/decisions.md, "PostgreSQL's plans for the hot statements", "Periodic jobs
read live rows only"); these helpers let a test run the real operation and ask the planner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from cloudsms.storage.store import Store


def plans_of(
    store: Store, job: Callable[[], object], keep: Callable[[str], bool]
) -> list[tuple[str, str]]:
    """(statement, plan) for every single statement ``job()`` runs that ``keep`` accepts.

    The plan is SQLite's ``EXPLAIN QUERY PLAN`` or PostgreSQL's ``EXPLAIN``, its lines joined
    with `` | ``; batches run by ``executemany`` are left out (one plan per row, no EXPLAIN).
    """
    seen: list[tuple[str, Any]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool
    ) -> None:
        if not many and keep(statement):
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        job()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    explain = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    plans = []
    with store.engine.connect() as conn:
        for statement, params in seen:
            rows = conn.exec_driver_sql(explain + statement, params or ())
            plans.append((statement, " | ".join(str(r[-1]) for r in rows)))
        conn.rollback()
    return plans
