"""Delivery reports to customers: the pusher's side of the outbox, ``ReportOps``.

Strategy: ``report_outbox`` is a transactional outbox, written in the transaction of the change
it reports (``report_enqueue``). The pusher works it with the operations here:

- **Due** rows are ``done_ms IS NULL AND next_attempt_ms <= now``. ``next_attempt_ms`` is the
  persisted retry time (house style habit 7); there is no other schedule anywhere.
- **Claim** = read due rows and, in the same transaction, move their ``next_attempt_ms`` to
  ``now + lease``. A process that dies mid-push leaves rows that simply become due again when
  the lease runs out: at least once, never lost. On PostgreSQL the read is ``FOR UPDATE OF
  report_outbox SKIP LOCKED``, so several processes can share the outbox; SQLite is one process
  (``BEGIN IMMEDIATE`` takes the write lock first).
- **Order per SMS_UID**: a row is claimable only when no earlier row (lower id) of the same
  SMS_UID is still undone, so a later state is never pushed before an earlier one, not even by
  another process. Overall order is ``next_attempt_ms, id``: oldest first among the due rows.
- **Serials**: the claim bumps ``report_serials.serial`` once per customer by the number of
  rows claimed for it (wrapping 65535 → 1) and hands each row its SERIAL. A retry is a new
  packet with a new SERIAL; a claimed row released without a push leaves a gap (harmless).
- **No callback URL**: a customer's reports are held (pending, out of the due range) for the
  retry window and pushed if a callback URL is set within it; then given up. Guide §9 promises
  a report for every accepted SMS_UID, and a customer may set the URL after its first sends.
- **Outcomes**: done (``done_ms`` set, ``last_error`` cleared, the push's HTTP status and
  duration kept on the row: only failed attempts are ``report_attempts`` rows), retry
  (``attempts + 1``, new ``next_attempt_ms``, ``last_error``), give up (``done_ms`` set,
  ``last_error`` starting with ``"gave up: "`` — until the schema has an outcome column),
  release (back to a given time, no attempt counted). ``defer`` moves every pending row of a
  customer to at least a given time: a callback that is down is probed, not hammered, and
  comes back oldest first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from cloudsms.domain.pipeline import DueReport, ReportResult
from cloudsms.storage.base import StoreBase
from cloudsms.storage.lease_ops import DB_NOW_SQL
from cloudsms.storage.plain_sql import in_list, json_list, run, run_many
from cloudsms.storage.tables import pending_unindexed

#: SERIAL of the platform's pushes counts 1..65535 and wraps (SPEC §1).
SERIAL_MAX = 65_535
#: ``last_error`` prefix of a report the pusher gave up on.
GAVE_UP = "gave up: "
#: ``last_error`` of a report held because its customer has no callback URL (yet).
HELD = "no callback_url yet: held for the retry window, pushed once one is set"
#: How long a report waits for a callback URL unless the claim is told (the default retry
#: window, ``report_retry_give_up_after_s``).
DEFAULT_HOLD_MS = 48 * 3_600_000
#: Bound parameters per IN (...) list.
_IN_CHUNK = 500

# --- statements ------------------------------------------------------------------------------

#: "Still pending" in the statements that find their reports by id or SMS_UID: checked on each
#: row, not read from the partial ``ix_report_outbox_due`` (``tables.unindexed`` says why).
_PENDING_BY_KEY = pending_unindexed("report_outbox")
#: The claim's "pending": the due index for a claim by due time, unindexed for given SMS_UIDs.
_PENDING_DUE, _PENDING_OF_UIDS = "o.done_ms IS NULL", pending_unindexed("o")

#: next_serial: the counter after taking ``n`` serials, wrapping 65535 → 1 (a customer's first
#: claim starts it at ``n``). Parameters: (id, n).
_BUMP_SERIAL = (
    "INSERT INTO report_serials (customer_id, serial) VALUES (?, ?) ON CONFLICT (customer_id)"
    f" DO UPDATE SET serial = (report_serials.serial + excluded.serial - 1) % {SERIAL_MAX} + 1"
    " RETURNING serial"
)

#: A report is claimable only when no earlier report of its SMS_UID is pending. Written so the
#: only index that can serve it is ``ix_report_outbox_uid`` (one SMS_UID's few rows): spelled
#: ``done_ms IS NULL``, PostgreSQL paired it with the partial ``ix_report_outbox_due`` in a
#: bitmap AND, and a bitmap scan of that index visits every dead entry left since the last
#: vacuum (~20,000 after a 20,000-message run: 0.25 ms per claimed row in ``EXPLAIN
#: ANALYZE``; the claim's SELECT took 3.5 s of the server's time over such a run).
NO_EARLIER_PENDING = (
    "NOT EXISTS (SELECT 1 FROM report_outbox AS prior WHERE prior.sms_uid = o.sms_uid"
    f" AND prior.id < o.id AND {pending_unindexed('prior')})"
)
#: What claim_due_reports reads, in the order its DueReport is built from.
_DUE_COLUMNS = (
    "o.id, o.sms_uid, o.customer_id, o.sms_state, o.result_desc, o.report_ms, o.created_ms,"
    " o.attempts, o.next_attempt_ms, m.sender, m.country_code, m.dest_msisdn, m.customer_body,"
    " m.segments, m.fee_micros, m.currency, c.callback_url, c.auth_key, c.callback_ca_pem"
)
_CREATED, _SENDER, _CALLBACK_URL, _AUTH_KEY = 6, 9, 16, 17
#: claim_due_reports: the due rows; ``{pending}`` is ``o.done_ms IS NULL`` (the due index) or,
#: for the reports of given SMS_UIDs, that condition unindexed; ``{excluded}`` is empty or
#: ``AND o.customer_id NOT IN (?, …)``, ``{locking}`` the engine's row locking. Parameters:
#: (now, *excluded, limit).
_CLAIM_DUE = (
    f"SELECT {_DUE_COLUMNS} FROM report_outbox AS o"
    " LEFT JOIN messages AS m ON m.sms_uid = o.sms_uid"
    " LEFT JOIN customers AS c ON c.id = o.customer_id"
    " WHERE {pending} AND {due}"
    f" AND {NO_EARLIER_PENDING}"
    # Reports of messages that asked for SMPP receipts are the SMPP server's (smpp_receipt_ops).
    " AND m.smpp_account_id IS NULL"
    "{excluded}{only} ORDER BY o.next_attempt_ms, o.id LIMIT ?{locking}"
)
#: Whether any report is due (parameter: now): read before the claim's write transaction, so
#: the pusher's polls that find nothing (most of them under load, where reports are claimed as
#: they are enqueued) neither take SQLite's write lock nor begin a transaction.
_ANY_DUE = "SELECT 1 FROM report_outbox WHERE done_ms IS NULL AND next_attempt_ms <= ? LIMIT 1"
#: Due now (parameter: now), or — rows written claimed (``report_enqueue.Preclaim``) — claimed
#: by this claimer (parameter: claimer).
_DUE_NOW = "o.next_attempt_ms <= ?"
#: ``+``: the claimer's rows are found by their SMS_UIDs (the ``{only}`` list, one probe of
#: ``ix_report_outbox_uid`` each), never by ``ix_report_outbox_claimed``, which holds every
#: report this claimer has in flight: SQLite chose it, and each read-back scanned them all
#: (752 µs for 16 reports with 3,000 in flight, against 90; 2026-12-07), so a slow callback
#: endpoint made every claim slower as its reports piled up.
_PRECLAIMED = "+o.claimed_by = ?"
_EXCLUDED = " AND o.customer_id NOT IN ({marks})"
#: Only the reports of these SMS_UIDs (reports claimed in the transaction that enqueued them).
#: On PostgreSQL one JSON parameter (``plain_sql.json_list``): one statement text whatever the
#: count, where an IN list of up to 1,024 parameters was parsed and planned per shape.
_ONLY = {
    "sqlite": " AND o.sms_uid IN ({marks})",
    "postgresql": " AND o.sms_uid = ANY(ARRAY(SELECT json_array_elements_text(CAST(? AS json))))",
}
_LOCKING = {"postgresql": " FOR UPDATE OF o SKIP LOCKED", "sqlite": ""}
#: Parameters: (next_attempt_ms, HELD, id).
_HOLD = (
    "UPDATE report_outbox SET next_attempt_ms = ?, last_error = ?, claimed_by = NULL WHERE id = ?"
)
#: ``{marks}`` from ``in_list``. Parameters: (next_attempt_ms, claimer, *ids).
_LEASE = "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = ? WHERE id IN ({marks})"
#: Rows written claimed that the claim did not take (an earlier report of the SMS_UID is still
#: pending): due again now. ``{marks}`` from ``in_list``. Parameters: (now, claimer, *uids).
#: ``+claimed_by``: by the SMS_UIDs, not through every report in flight (see ``_PRECLAIMED``).
_UNCLAIM = (
    "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = NULL"
    f" WHERE +claimed_by = ? AND {_PENDING_BY_KEY} AND sms_uid IN ({{marks}})"
)
#: Parameters: (done_ms, last_error, *ids).
_GIVE_UP_IDS = "UPDATE report_outbox SET done_ms = ?, last_error = ? WHERE id IN ({marks})"

#: record_report_results, one statement per outcome kind; only pending rows change.
_DONE = (
    "UPDATE report_outbox SET done_ms = CAST(v.column1 AS BIGINT), attempts = attempts +"
    " CAST(v.column2 AS INTEGER), http_status = CAST(v.column3 AS INTEGER),"
    " duration_ms = CAST(v.column4 AS INTEGER), last_error = NULL, claimed_by = NULL"
    " FROM (VALUES {rows}) AS v"
    f" WHERE report_outbox.id = v.column5 AND {_PENDING_BY_KEY}"
)
_RETRY = (
    "UPDATE report_outbox SET next_attempt_ms = ?, attempts = attempts + ?, last_error = ?,"
    " claimed_by = NULL WHERE id = ? AND done_ms IS NULL"
)
_GIVE_UP = (
    "UPDATE report_outbox SET done_ms = ?, attempts = attempts + ?, last_error = ?,"
    " claimed_by = NULL WHERE id = ? AND done_ms IS NULL"
)
_RELEASE = (
    "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = NULL"
    " WHERE id = ? AND done_ms IS NULL"
)
#: A customer's callback is down: its pending HTTP reports wait (not its SMPP receipts, which
#: go out over its SMPP sessions; rare path, so a keyed lookup per row is fine).
_DEFER = (
    "UPDATE report_outbox SET next_attempt_ms = ?"
    " WHERE customer_id = ? AND done_ms IS NULL AND next_attempt_ms < ?"
    " AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.sms_uid = report_outbox.sms_uid"
    " AND m.smpp_account_id IS NOT NULL)"
)
_ATTEMPTS = (
    "INSERT INTO report_attempts (outbox_id, sms_uid, attempted_ms, duration_ms,"
    " http_status, ok, answer) VALUES {rows}"
)
#: recover_claimed_reports, per engine (the database's clock). Parameters: (now,).
_RECOVER = {
    dialect: "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = NULL"
    " WHERE claimed_by IS NOT NULL AND done_ms IS NULL AND claimed_by NOT IN"
    f" (SELECT id FROM workers WHERE lease_until_ms > {now})"
    for dialect, now in DB_NOW_SQL.items()
}


class ReportOps(StoreBase):
    """The pusher's operations on the report outbox: claim, serials, outcomes, recovery."""

    # ----------------------------------------------------------------------------------- claim

    def claim_due_reports(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 120_000,
        exclude_customers: Collection[int] = (),
        claimer: int | None = None,
        hold_ms: int = DEFAULT_HOLD_MS,
    ) -> list[DueReport]:
        """Claim up to ``limit`` due reports for ``lease_ms`` and give each its SERIAL.

        Oldest first (``next_attempt_ms``, then id); never a report whose SMS_UID has an
        earlier report still undone. Reports of ``exclude_customers`` are left for later (the
        pusher excludes customers it already has enough work for). A report whose message or
        customer no longer exists is given up in the same transaction (never returned).

        A report of a customer without a callback URL is *held*, not returned: it waits until
        ``hold_ms`` (the retry window) after it was enqueued, marked :data:`HELD`, and is pushed
        if a callback URL is set meanwhile (``CustomerOps.set_callback_url`` makes it due at
        once); at the end of the window it is given up (``gave up: no callback_url``). The
        message's state is queryable with DR_QUERY all along.
        """
        with self._connect(write=False) as conn:
            if self._run(conn, _ANY_DUE, (now_ms,)).first() is None:
                return []
        with self._connect(write=True, durable=False) as conn:
            return claim_reports(
                conn, self.dialect, now_ms, limit, lease_ms=lease_ms,
                exclude_customers=exclude_customers, claimer=claimer, hold_ms=hold_ms,
            )  # fmt: skip

    # --------------------------------------------------------------------------------- serials

    def next_serial(self, customer_id: int) -> int:
        """The next SERIAL for the customer's pushes: 1..65535, wrapping; persisted atomically."""
        return self.next_serials(customer_id, 1)[0]

    def next_serials(self, customer_id: int, n: int) -> list[int]:
        """``n`` consecutive serials (wrapping 65535 → 1) taken in one atomic UPDATE."""
        with self._connect(write=True) as conn:
            return self._take_serials(conn, customer_id, n)

    def _take_serials(self, conn: Connection, customer_id: int, n: int) -> list[int]:
        return take_serials(conn, self.dialect, customer_id, n)

    # -------------------------------------------------------------------------------- outcomes

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        """Write what became of claimed reports, in one transaction (one statement per kind).

        ``defer`` maps customer_id → epoch ms: every pending report of that customer due
        earlier is moved to that time (a callback that is down gets probed, not hammered).
        Only pending rows change, so a late duplicate outcome never undoes a done report.
        """
        done = [
            (now_ms, int(r.attempted), r.http_status, r.duration_ms, r.id)
            for r in results
            if r.outcome == "done"
        ]
        retry = [
            (r.next_attempt_ms, int(r.attempted), r.error[:1000], r.id)
            for r in results
            if r.outcome == "retry"
        ]
        give_up = [
            (now_ms, int(r.attempted), (GAVE_UP + r.error)[:1000], r.id)
            for r in results
            if r.outcome == "give_up"
        ]
        release = [(r.next_attempt_ms, r.id) for r in results if r.outcome == "release"]
        # A failed attempt gets a row (what the customer's server answered, for operators); a
        # successful one is the outbox row's done_ms and attempts (issue 14: no row written
        # for the common case).
        attempts = [
            (r.id, r.sms_uid, r.attempted_ms or now_ms, r.duration_ms, r.http_status,
             False, (r.answer or r.error or "")[:500])
            for r in results
            if r.attempted and r.sms_uid is not None and r.outcome != "done"
        ]  # fmt: skip
        with self._connect(write=True, durable=False) as conn:
            self._run_rows(conn, _DONE, done)
            self._run_many(conn, _RETRY, retry)
            self._run_many(conn, _GIVE_UP, give_up)
            self._run_many(conn, _RELEASE, release)
            self._run_rows(conn, _ATTEMPTS, attempts)
            for cid, until in sorted((defer or {}).items()):
                self._run(conn, _DEFER, (until, cid, until))

    def recover_claimed_reports(self, now_ms: int) -> int:
        """Reports claimed by workers whose lease ran out are due again at ``now_ms``.

        Without this they would wait for the end of their claim's lease (``report_lease_s``,
        minutes). Whether the dead worker had already pushed them is unknown: they are pushed
        again (at least once). Claims made without a claimer keep the lease rule. Returns how
        many reports were given back.
        """
        with self._connect(write=True, durable=False) as conn:
            result = self._run(conn, _RECOVER[self.dialect], (now_ms,))
            return int(result.rowcount or 0)

    def mark_report_done(self, ids: Sequence[int], now_ms: int) -> None:
        """The customer accepted these reports."""
        self.record_report_results([ReportResult(i, "done") for i in ids], now_ms=now_ms)

    def reschedule_report(self, report_id: int, next_attempt_ms: int, error: str) -> None:
        """An attempt failed; try again at ``next_attempt_ms``."""
        result = ReportResult(report_id, "retry", next_attempt_ms, error)
        self.record_report_results([result], now_ms=self.now_ms())

    def give_up_report(self, report_id: int, error: str) -> None:
        """An attempt failed and the retry window is over: stop (the row stays, marked)."""
        result = ReportResult(report_id, "give_up", error=error)
        self.record_report_results([result], now_ms=self.now_ms())


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def claim_reports(
    conn: Connection,
    dialect: str,
    now_ms: int,
    limit: int,
    *,
    lease_ms: int,
    claimer: int | None,
    hold_ms: int,
    exclude_customers: Collection[int] = (),
    sms_uids: Sequence[str] = (),
    preclaimed: bool = False,
) -> list[DueReport]:
    """``claim_due_reports`` in the caller's transaction; with ``sms_uids``, only their reports.

    The dispatch transaction that enqueues reports claims them with it for this process's
    pusher (``DispatchOps.record_dispatch`` with a ``ReportClaim``), so they are not found
    again by a claim query of their own. With ``preclaimed``, the rows of ``sms_uids`` were
    written claimed by ``claimer`` (``report_enqueue.Preclaim``): they are read back without a
    second write of their lease, and those the claim may not take yet (an earlier report of
    the same SMS_UID still pending) are made due again.
    """
    excluded, excluded_ids = "", ()
    if exclude_customers:
        marks, excluded_ids = in_list(sorted(int(c) for c in exclude_customers))
        excluded = _EXCLUDED.replace("{marks}", marks)
    only = ""
    only_ids: tuple[object, ...] = ()
    if sms_uids and dialect == "postgresql":
        only, only_ids = _ONLY[dialect], (json_list(sorted(sms_uids)),)
    elif sms_uids:
        marks, only_ids = in_list(sorted(sms_uids))
        only = _ONLY[dialect].replace("{marks}", marks)
    due = (
        _CLAIM_DUE.replace("{due}", _PRECLAIMED if preclaimed else _DUE_NOW)
        .replace("{pending}", _PENDING_OF_UIDS if sms_uids else _PENDING_DUE)
        .replace("{excluded}", excluded)
        .replace("{only}", only)
        .replace("{locking}", _LOCKING[dialect])
    )
    first = claimer if preclaimed else now_ms
    rows = run(conn, dialect, due, (first, *excluded_ids, *only_ids, limit)).all()
    if preclaimed:
        _unclaim_left(conn, dialect, now_ms, claimer, set(sms_uids) - {r[1] for r in rows})
    if not rows:
        return []
    # auth_key (customer) and sender (message) are never NULL in a row that exists.
    live = [r for r in rows if r[_AUTH_KEY] is not None and r[_SENDER] is not None]
    orphans = [r[0] for r in rows if r[_AUTH_KEY] is None or r[_SENDER] is None]
    # No callback URL (yet): nothing to push now. Held to the end of the retry window
    # (one UPDATE, then out of the due range), given up once that has passed.
    held = [
        (r[_CREATED] + hold_ms, HELD, r[0])
        for r in live
        if not r[_CALLBACK_URL] and r[_CREATED] + hold_ms > now_ms
    ]
    unpushable = [r[0] for r in live if not r[_CALLBACK_URL] and r[_CREATED] + hold_ms <= now_ms]
    live = [r for r in live if r[_CALLBACK_URL]]
    if held:
        run_many(conn, dialect, _HOLD, held)
    for chunk in _chunks([] if preclaimed else [r[0] for r in live]):
        marks, values = in_list(chunk)
        run(conn, dialect, _LEASE.replace("{marks}", marks), (now_ms + lease_ms, claimer, *values))
    for chunk in _chunks(orphans):
        marks, values = in_list(chunk)
        error = GAVE_UP + "message or customer missing"
        run(conn, dialect, _GIVE_UP_IDS.replace("{marks}", marks), (now_ms, error, *values))
    for chunk in _chunks(unpushable):
        marks, values = in_list(chunk)
        error = GAVE_UP + "no callback_url"
        run(conn, dialect, _GIVE_UP_IDS.replace("{marks}", marks), (now_ms, error, *values))
    per_customer: dict[int, int] = {}
    for r in live:
        per_customer[r[2]] = per_customer.get(r[2], 0) + 1
    serials = {
        cid: iter(take_serials(conn, dialect, cid, n)) for cid, n in sorted(per_customer.items())
    }
    return [
        DueReport(
            id=id_, sms_uid=uid, customer_id=cid, sms_state=sms_state, result_desc=desc,
            report_ms=report_ms, created_ms=created_ms, attempts=attempts,
            # A row written claimed holds its lease end there; it became due now (a pusher
            # that releases it gives it back to this time, not to the lease's end).
            next_attempt_ms=now_ms if preclaimed else next_ms,
            serial=next(serials[cid]), sender=sender,
            country_code=country_code, dest_msisdn=dest, customer_body=body,
            segments=segments, fee_micros=fee, currency=currency, callback_url=url,
            auth_key=key, callback_ca_pem=ca,
        )
        for (id_, uid, cid, sms_state, desc, report_ms, created_ms, attempts, next_ms,
             sender, country_code, dest, body, segments, fee, currency, url, key, ca) in live
    ]  # fmt: skip


def _unclaim_left(
    conn: Connection, dialect: str, now_ms: int, claimer: int | None, uids: Collection[str]
) -> None:
    """Rows written claimed that the claim did not return are due again at ``now_ms``."""
    for chunk in _chunks(sorted(uids)):
        marks, values = in_list(chunk)
        run(conn, dialect, _UNCLAIM.replace("{marks}", marks), (now_ms, claimer, *values))


def take_serials(conn: Connection, dialect: str, customer_id: int, n: int) -> list[int]:
    """``n`` consecutive SERIALs of the customer's pushes, taken in one UPDATE of ``conn``."""
    if n < 1:
        return []
    last = run(conn, dialect, _BUMP_SERIAL, (customer_id, n)).scalar_one()
    # last = (before + n - 1) % MAX + 1, so serial k (1-based) = (last - 1 - n + k) % MAX + 1
    return [(last - 1 - n + k) % SERIAL_MAX + 1 for k in range(1, n + 1)]
