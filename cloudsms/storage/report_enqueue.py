"""Writing delivery reports into the outbox, inside the transaction of the change they report.

Strategy: ``report_outbox`` is a transactional outbox. A report row is written in the same
transaction as the state change it reports (:func:`enqueue_report` with the connection of the
dispatcher's, the expiry's or the accept path's transaction), so a state change is never lost
nor reported without having happened. The pusher then works the outbox (``report_ops``).

- **One report per state**: :func:`enqueue_report` skips a state already enqueued for the
  SMS_UID and anything after a final state, so a late carrier receipt after EXPIRED is not
  pushed as a second final state, and intermediate states (ENROUTE, ACCEPTED, IDLE) only go to
  customers with ``report_intermediate``.
- **Functions, not a mixin**: the operations that change messages (``dispatch_ops``,
  ``expiry_ops``, ``messages``) call these with their own connection; ``ReportEnqueueOps``
  offers the same to callers of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from cloudsms.domain.pipeline import NewReport
from cloudsms.domain.reports import FINAL_SMS_STATES, INTERMEDIATE_STATES
from cloudsms.storage.base import StoreBase
from cloudsms.storage.plain_sql import fetch_rows, run, run_many
from cloudsms.storage.tables import pending_unindexed

_COLUMNS = "sms_uid, customer_id, sms_state, result_desc, report_ms, created_ms, next_attempt_ms"
_COLUMNS += ", claimed_by, attempts"
_FINAL_LIST = ", ".join(map(str, sorted(FINAL_SMS_STATES)))

#: enqueue_report of a final state: INSERT … SELECT that writes nothing when the SMS_UID already
#: has a report of this state or a final one. Parameters: (sms_uid, customer_id, sms_state,
#: result_desc, report_ms, now_ms, next_attempt_ms, claimed_by, sms_uid, sms_state). The casts
#: type the SELECT's values for PostgreSQL, which does not infer them from the INSERT's columns.
_ENQUEUE_FINAL = (
    f"INSERT INTO report_outbox ({_COLUMNS})"
    " SELECT CAST(? AS VARCHAR), CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS VARCHAR),"
    " CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS INTEGER), 0"
    " WHERE NOT EXISTS (SELECT 1 FROM report_outbox AS prior WHERE prior.sms_uid = ?"
    f" AND (prior.sms_state = ? OR prior.sms_state IN ({_FINAL_LIST})))"
)
#: enqueue_report of an intermediate state: the same guard, and the customer must have opted in
#: (the customer_id comes once more, last).
_ENQUEUE_INTERMEDIATE = (
    _ENQUEUE_FINAL + " AND EXISTS (SELECT 1 FROM customers WHERE customers.id = ?"
    " AND customers.report_intermediate)"
)

#: A row of a batch is written claimed (``claimed_by`` its claimer, due at the lease's end) only
#: when no earlier report of its SMS_UID is still pending: the pusher may not take it before
#: that one (``report_ops.NO_EARLIER_PENDING``), so it is written due now, unclaimed. The
#: statement's subqueries see the outbox as it was before the statement, on both engines.
_CLAIMABLE = (
    "v.column8 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM report_outbox AS earlier"
    f" WHERE earlier.sms_uid = v.column1 AND {pending_unindexed('earlier')})"
)
#: _ENQUEUE_FINAL as one statement for a batch (plain_sql.fetch_rows), rows of (sms_uid,
#: customer_id, sms_state, result_desc, report_ms, now_ms, lease_until_ms, claimer). The guard
#: does not see rows of the same statement: one row per SMS_UID. Returns each row written: its
#: id, SMS_UID and claimer (NULL: written due now, unclaimed).
_ENQUEUE_FINALS = (
    f"INSERT INTO report_outbox ({_COLUMNS})"
    " SELECT CAST(v.column1 AS VARCHAR), CAST(v.column2 AS INTEGER),"
    " CAST(v.column3 AS INTEGER), CAST(v.column4 AS VARCHAR), CAST(v.column5 AS BIGINT),"
    f" CAST(v.column6 AS BIGINT), CASE WHEN {_CLAIMABLE} THEN CAST(v.column7 AS BIGINT)"
    f" ELSE CAST(v.column6 AS BIGINT) END, CASE WHEN {_CLAIMABLE}"
    " THEN CAST(v.column8 AS INTEGER) END, 0"
    " FROM (VALUES {rows}) AS v"
    " WHERE NOT EXISTS (SELECT 1 FROM report_outbox AS prior WHERE prior.sms_uid = v.column1"
    f" AND (prior.sms_state = v.column3 OR prior.sms_state IN ({_FINAL_LIST})))"
    " RETURNING id, sms_uid, claimed_by"
)

#: _ENQUEUE_FINALS on PostgreSQL (``plain_sql.fetch_rows`` sends the rows as one jsonb
#: parameter): the guard is a LATERAL probe of ``ix_report_outbox_uid`` per row, a plan the
#: server cannot choose otherwise (a NOT EXISTS may be planned as a hash anti-join over the
#: whole outbox when the table outgrew its statistics: it always has, under load). Before, one
#: statement per row (``executemany``): ~14 µs of the server's time each, twice that with the
#: driver's.
_ENQUEUE_FINALS_PG = (
    f"INSERT INTO report_outbox ({_COLUMNS})"
    " SELECT CAST(v.column1 AS VARCHAR), CAST(v.column2 AS INTEGER),"
    " CAST(v.column3 AS INTEGER), CAST(v.column4 AS VARCHAR), CAST(v.column5 AS BIGINT),"
    f" CAST(v.column6 AS BIGINT), CASE WHEN {_CLAIMABLE} THEN CAST(v.column7 AS BIGINT)"
    f" ELSE CAST(v.column6 AS BIGINT) END, CASE WHEN {_CLAIMABLE}"
    " THEN CAST(v.column8 AS INTEGER) END, 0"
    " FROM (VALUES {rows}) AS v LEFT JOIN LATERAL (SELECT 1 AS found FROM report_outbox AS prior"
    " WHERE prior.sms_uid = v.column1"
    f" AND (prior.sms_state = v.column3 OR prior.sms_state IN ({_FINAL_LIST})) LIMIT 1) AS p"
    " ON TRUE WHERE p.found IS NULL"
    " RETURNING id, sms_uid, claimed_by"
)
_FINALS_BY_DIALECT = {"sqlite": _ENQUEUE_FINALS, "postgresql": _ENQUEUE_FINALS_PG}

#: Unguarded insert for reports of brand-new messages (the accept path's LOCAL_REJECTED).
_INSERT_FRESH = f"INSERT INTO report_outbox ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)"


@dataclass(frozen=True, slots=True)
class Preclaim:
    """Final reports written already claimed for this process's pusher.

    Why: the transaction that enqueues a report and then claims it (``ReportClaim``) would
    write the row twice — insert, then the claim's lease. Written claimed (``claimed_by``, due
    again at ``lease_until_ms`` if the pusher dies), the row is written once; ``report_ops``
    then reads it back as the claim does (``claim_reports(..., preclaimed=True)``).
    """

    claimer: int | None
    lease_until_ms: int
    #: The SMS_UIDs whose report is written claimed (the others as usual, due now).
    sms_uids: frozenset[str]


def enqueue_report(conn: Connection, dialect: str, report: NewReport, *, now_ms: int) -> bool:
    """Write ``report`` inside the caller's transaction ``conn``; True if a row was written.

    Nothing is written for a state already enqueued for this SMS_UID, for anything after a
    final state (a late receipt after EXPIRED), or for an intermediate state when the customer
    did not opt in. Call it in the transaction that changes the message, so the report exists
    exactly when the change does. Wake the pusher after the commit.

    Example (applying a receipt)::

        with store.engine.begin() as conn:
            ...  # UPDATE messages SET state = 'delivered' …
            enqueue_report(conn, store.dialect, report, now_ms=store.now_ms())
        pusher.wake()
    """
    sql, params = _guarded(report, now_ms)
    return int(run(conn, dialect, sql, params).rowcount or 0) == 1


def enqueue_reports(
    conn: Connection,
    dialect: str,
    reports: Sequence[NewReport],
    *,
    now_ms: int,
    preclaim: Preclaim | None = None,
) -> dict[str, int] | None:
    """Batch form of :func:`enqueue_report`, in the caller's transaction.

    Each guard must see the rows written before it, those of this batch included, so reports of
    the same SMS_UID must come in state order. A batch of final reports with one row per
    SMS_UID is one multi-row statement (its guard does not see rows of the same statement);
    anything else is one statement per report (executemany). Final reports of ``preclaim``'s
    SMS_UIDs are written claimed, unless an earlier report of theirs is still pending.

    Returns the reports written claimed, SMS_UID → outbox id, when the one multi-row statement
    wrote every final report (the dispatch transaction then builds their claim from what it
    holds, without reading them back); None otherwise (the caller reads back what it claimed).
    """
    finals = [r for r in reports if r.sms_state not in INTERMEDIATE_STATES]
    middles = [r for r in reports if r.sms_state in INTERMEDIATE_STATES]
    if {r.sms_uid for r in finals} & {r.sms_uid for r in middles}:
        # One SMS_UID with both kinds: one statement per report, in the order given.
        for r in reports:
            enqueue_report(conn, dialect, r, now_ms=now_ms)
        return None
    claimed: dict[str, int] | None = None
    if finals and len({r.sms_uid for r in finals}) == len(finals):
        rows = []
        for r in finals:
            due, claimer = _due_and_claimer(r, now_ms, preclaim)
            rows.append(
                (r.sms_uid, r.customer_id, r.sms_state, r.result_desc, r.report_ms, now_ms, due,
                 claimer)
            )  # fmt: skip
        written = fetch_rows(conn, dialect, _FINALS_BY_DIALECT[dialect], rows)
        claimed = {uid: id_ for id_, uid, claimer in written if claimer is not None}
    elif finals:
        params = [_guarded(r, now_ms, preclaim)[1] for r in finals]
        run_many(conn, dialect, _ENQUEUE_FINAL, params)
    if middles:
        run_many(conn, dialect, _ENQUEUE_INTERMEDIATE, [_guarded(r, now_ms)[1] for r in middles])
    return claimed


def insert_fresh_reports(conn: Connection, dialect: str, reports: Sequence[NewReport]) -> None:
    """Reports of messages created in this very transaction: no guard needed, one executemany.

    Each row is enqueued, and due, at its ``report_ms``. The accept path
    (``MessageOps.accept_packets``) uses it for LOCAL_REJECTED recipients (SPEC §4).
    """
    rows = [
        (r.sms_uid, r.customer_id, r.sms_state, r.result_desc, r.report_ms, ms, ms)
        for r in reports
        for ms in (r.report_ms,)
    ]
    run_many(conn, dialect, _INSERT_FRESH, rows)


def _due_and_claimer(
    r: NewReport, now_ms: int, preclaim: Preclaim | None
) -> tuple[int, int | None]:
    """``next_attempt_ms`` and ``claimed_by`` of a new row: due now, or claimed already."""
    if preclaim is not None and r.sms_uid in preclaim.sms_uids:
        return preclaim.lease_until_ms, preclaim.claimer
    return now_ms, None


def _guarded(
    r: NewReport, now_ms: int, preclaim: Preclaim | None = None
) -> tuple[str, tuple[object, ...]]:
    """The guarded statement for ``r`` and its parameters."""
    due, claimer = _due_and_claimer(r, now_ms, preclaim)
    params: tuple[object, ...] = (
        r.sms_uid, r.customer_id, r.sms_state, r.result_desc, r.report_ms, now_ms, due, claimer,
        r.sms_uid, r.sms_state,
    )  # fmt: skip
    if r.sms_state in INTERMEDIATE_STATES:
        return _ENQUEUE_INTERMEDIATE, (*params, r.customer_id)
    return _ENQUEUE_FINAL, params


class ReportEnqueueOps(StoreBase):
    """The outbox writes as store operations (the functions above, with the store's dialect)."""

    def enqueue_report(
        self,
        conn: Connection,
        *,
        sms_uid: str,
        customer_id: int,
        sms_state: int,
        result_desc: str,
        report_ms: int,
        now_ms: int,
    ) -> bool:
        """:func:`enqueue_report` in the caller's transaction ``conn``."""
        report = NewReport(
            sms_uid=sms_uid,
            customer_id=customer_id,
            sms_state=sms_state,
            result_desc=result_desc,
            report_ms=report_ms,
        )
        return enqueue_report(conn, self.dialect, report, now_ms=now_ms)

    def enqueue_reports(
        self, conn: Connection, reports: Sequence[NewReport], *, now_ms: int
    ) -> None:
        """:func:`enqueue_reports` in the caller's transaction ``conn``."""
        enqueue_reports(conn, self.dialect, reports, now_ms=now_ms)

    def enqueue_report_now(
        self, *, sms_uid: str, customer_id: int, sms_state: int, result_desc: str, report_ms: int
    ) -> bool:
        """:meth:`enqueue_report` in its own transaction (tools, tests, one-off corrections)."""
        with self._connect(write=True) as conn:
            return self.enqueue_report(
                conn,
                sms_uid=sms_uid,
                customer_id=customer_id,
                sms_state=sms_state,
                result_desc=result_desc,
                report_ms=report_ms,
                now_ms=self.now_ms(),
            )
