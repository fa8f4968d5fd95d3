"""Read-side queries of the report outbox for operators and metrics: ``ReportQueryOps``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from cloudsms.storage import tables
from cloudsms.storage.base import StoreBase
from cloudsms.storage.report_ops import GAVE_UP

_o = tables.report_outbox


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportCounts:
    """Outbox totals for operators and metrics."""

    pending: int
    due: int
    done: int
    given_up: int
    #: created_ms of the oldest pending report, None when nothing is pending.
    oldest_pending_ms: int | None


class ReportQueryOps(StoreBase):
    def report_counts(self, now_ms: int | None = None) -> ReportCounts:
        """Pending / due / done / given-up totals and the age of the oldest pending report."""
        now = self.now_ms() if now_ms is None else now_ms
        pending = _o.c.done_ms.is_(None)
        stmt = select(
            func.count().filter(pending),
            func.count().filter(pending, _o.c.next_attempt_ms <= now),
            func.count().filter(_o.c.done_ms.is_not(None)),
            func.count().filter(_o.c.done_ms.is_not(None), _o.c.last_error.like(GAVE_UP + "%")),
            func.min(_o.c.created_ms).filter(pending),
        )
        with self._connect(write=False) as conn:
            n_pending, n_due, n_done, n_given_up, oldest = conn.execute(stmt).one()
        return ReportCounts(
            pending=int(n_pending),
            due=int(n_due),
            done=int(n_done) - int(n_given_up),
            given_up=int(n_given_up),
            oldest_pending_ms=None if oldest is None else int(oldest),
        )
