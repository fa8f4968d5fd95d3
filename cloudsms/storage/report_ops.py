"""Delivery reports to customers: the outbox operations, ``ReportOps``, one mixin of the store.

Strategy: ``report_outbox`` is a transactional outbox. A report row is written in the same
transaction as the state change it reports (``enqueue_report(conn, …)`` inside the dispatcher's
or the accept path's transaction), so a state change is never lost nor reported without having
happened. The pusher then works the outbox:

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
- **Serials**: the claim bumps ``customers.report_serial`` once per customer by the number of
  rows claimed for it (wrapping 65535 → 1) and hands each row its SERIAL. A retry is a new
  packet with a new SERIAL; a claimed row released without a push leaves a gap (harmless).
- **One report per state**: ``enqueue_report`` skips a state already enqueued for the SMS_UID
  and anything after a final state, so a late carrier receipt after EXPIRED is not pushed as a
  second final state, and intermediate states (ENROUTE, ACCEPTED, IDLE) only go to customers
  with ``report_intermediate``.
- **No callback URL**: a customer's reports are held (pending, out of the due range) for the
  retry window and pushed if a callback URL is set within it; then given up. Guide §9 promises
  a report for every accepted SMS_UID, and a customer may set the URL after its first sends.
- **Outcomes**: done (``done_ms`` set, ``last_error`` cleared), retry (``attempts + 1``, new
  ``next_attempt_ms``, ``last_error``), give up (``done_ms`` set, ``last_error`` starting with
  ``"gave up: "`` — until the schema has an outcome column), release (back to a given time, no
  attempt counted). ``defer`` moves every pending row of a customer to at least a given time:
  a callback that is down is probed, not hammered, and comes back oldest first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.types import BigInteger, Integer, String

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import DueReport, NewReport, ReportResult
from cloudsms.domain.reports import FINAL_SMS_STATES, INTERMEDIATE_STATES
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import StoreError
from cloudsms.storage import tables
from cloudsms.storage.base import StoreBase
from cloudsms.storage.lease_ops import db_now_sql
from cloudsms.storage.plain_sql import in_list

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

_o = tables.report_outbox
_m = tables.messages
_c = tables.customers


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportCounts:
    """Outbox totals for operators and metrics."""

    pending: int
    due: int
    done: int
    given_up: int
    #: created_ms of the oldest pending report, None when nothing is pending.
    oldest_pending_ms: int | None


# --- statements ------------------------------------------------------------------------------

_INSERT_COLUMNS = ["sms_uid", "customer_id", "sms_state", "result_desc", "report_ms"]
_INSERT_COLUMNS += ["created_ms", "next_attempt_ms", "attempts"]


#: Final states as SQL literals (an expanding IN list cannot run in executemany).
_FINAL_LITERALS: list[Any] = [literal_column(str(s)) for s in sorted(FINAL_SMS_STATES)]


def _guarded_insert(intermediate: bool) -> Any:
    """enqueue_report: INSERT … SELECT that writes nothing when the report must not be pushed.

    Skipped when the SMS_UID already has a report of this state or a final one; an
    intermediate state also needs the customer's ``report_intermediate``.
    """
    prior = _o.alias("prior")
    already = exists().where(
        prior.c.sms_uid == bindparam("sms_uid"),
        (prior.c.sms_state == bindparam("sms_state")) | prior.c.sms_state.in_(_FINAL_LITERALS),
    )
    conditions = [~already]
    if intermediate:
        conditions.append(
            exists().where(_c.c.id == bindparam("customer_id"), _c.c.report_intermediate)
        )
    source = select(
        bindparam("sms_uid", type_=String),
        bindparam("customer_id", type_=Integer),
        bindparam("sms_state", type_=Integer),
        bindparam("result_desc", type_=String),
        bindparam("report_ms", type_=BigInteger),
        bindparam("now_ms", type_=BigInteger),
        bindparam("now_ms", type_=BigInteger),
        literal(0, Integer),
    ).where(and_(*conditions))
    # preserve_rowcount: SQLAlchemy reports an INSERT's rowcount only when asked to.
    return insert(_o).from_select(_INSERT_COLUMNS, source).execution_options(preserve_rowcount=True)


_ENQUEUE_FINAL = _guarded_insert(intermediate=False)
_ENQUEUE_INTERMEDIATE = _guarded_insert(intermediate=True)

_FINAL_LIST = ", ".join(map(str, sorted(FINAL_SMS_STATES)))

#: _ENQUEUE_FINAL as one plain-SQL statement for a batch (StoreBase._run_rows), rows of
#: (sms_uid, customer_id, sms_state, result_desc, report_ms); ``{now}`` is created_ms and the
#: first next_attempt_ms. The guard does not see rows of the same statement: one row per SMS_UID.
_ENQUEUE_FINALS_SQL = (
    f"INSERT INTO report_outbox ({', '.join(_INSERT_COLUMNS)})"
    " SELECT CAST(v.column1 AS VARCHAR), CAST(v.column2 AS INTEGER),"
    " CAST(v.column3 AS INTEGER), CAST(v.column4 AS VARCHAR), CAST(v.column5 AS BIGINT),"
    " {now}, {now}, 0 FROM (VALUES {rows}) AS v"
    " WHERE NOT EXISTS (SELECT 1 FROM report_outbox AS prior WHERE prior.sms_uid = v.column1"
    f" AND (prior.sms_state = v.column3 OR prior.sms_state IN ({_FINAL_LIST})))"
)

#: Unguarded bulk insert for reports of brand-new messages (the accept path's LOCAL_REJECTED).
_INSERT_FRESH = {
    "sqlite": (
        f"INSERT INTO report_outbox ({', '.join(_INSERT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, 0)"
    ),
    "postgresql": (
        f"INSERT INTO report_outbox ({', '.join(_INSERT_COLUMNS)}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, 0)"
    ),
}

#: next_serial: the counter after taking ``n`` serials, wrapping 65535 → 1.
_BUMP_SERIAL = (
    update(_c)
    .where(_c.c.id == bindparam("cid"))
    .values(report_serial=(_c.c.report_serial + bindparam("n", type_=Integer) - 1) % SERIAL_MAX + 1)
    .returning(_c.c.report_serial)
)


#: What claim_due_reports reads, in the order its DueReport is built from.
_DUE_COLUMNS = (
    "o.id, o.sms_uid, o.customer_id, o.sms_state, o.result_desc, o.report_ms, o.created_ms,"
    " o.attempts, o.next_attempt_ms, m.sender, m.country_code, m.dest_msisdn, m.customer_body,"
    " m.segments, m.fee_micros, m.currency, c.callback_url, c.auth_key, c.callback_ca_pem"
)
_CREATED, _SENDER, _CALLBACK_URL, _AUTH_KEY = 6, 9, 16, 17


class ReportOps(StoreBase):
    """Named operations on the report outbox. Mixed into ``store.Store``."""

    # --------------------------------------------------------------------------------- enqueue

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
        """Write a report row inside the caller's transaction ``conn``; True if one was written.

        Nothing is written for a state already enqueued for this SMS_UID, for anything after a
        final state (a late receipt after EXPIRED), or for an intermediate state when the
        customer did not opt in. Call it in the transaction that changes the message, so the
        report exists exactly when the change does. Wake the pusher after the commit.

        Example (the dispatcher, applying a receipt)::

            with store.engine.begin() as conn:
                ...  # UPDATE messages SET state = 'delivered' …
                store.enqueue_report(conn, sms_uid=uid, customer_id=cid, sms_state=2,
                                     result_desc="DELIVERED", report_ms=receipt_ms,
                                     now_ms=store.now_ms())
            pusher.wake()
        """
        report = NewReport(
            sms_uid=sms_uid,
            customer_id=customer_id,
            sms_state=sms_state,
            result_desc=result_desc,
            report_ms=report_ms,
        )
        return conn.execute(_statement(report), _params(report, now_ms)).rowcount == 1

    def enqueue_reports(
        self, conn: Connection, reports: Sequence[NewReport], *, now_ms: int
    ) -> None:
        """Batch form of :meth:`enqueue_report`, in the caller's transaction.

        Each guard must see the rows written before it, those of this batch included, so
        reports of the same SMS_UID must come in state order. On SQLite a batch of final
        reports with one row per SMS_UID is one multi-row statement (its guard does not see
        rows of the same statement); anything else is one statement per report (executemany;
        on PostgreSQL a VALUES join may be planned badly, see ``plain_sql.run_rows``). No count
        is returned: psycopg does not report one for executemany.
        """
        finals = [r for r in reports if r.sms_state not in INTERMEDIATE_STATES]
        middles = [r for r in reports if r.sms_state in INTERMEDIATE_STATES]
        if {r.sms_uid for r in finals} & {r.sms_uid for r in middles}:
            # One SMS_UID with both kinds: one statement per report, in the order given.
            for r in reports:
                conn.execute(_statement(r), _params(r, now_ms))
            return
        if finals and self.dialect == "sqlite" and len({r.sms_uid for r in finals}) == len(finals):
            self._run_rows(
                conn,
                _ENQUEUE_FINALS_SQL.replace("{now}", str(int(now_ms))),
                [(r.sms_uid, r.customer_id, r.sms_state, r.result_desc, r.report_ms)
                 for r in finals],
            )  # fmt: skip
        elif finals:
            conn.execute(_ENQUEUE_FINAL, [_params(r, now_ms) for r in finals])
        if middles:
            conn.execute(_ENQUEUE_INTERMEDIATE, [_params(r, now_ms) for r in middles])

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
        if a callback URL is set meanwhile (``ConfigOps.set_callback_url`` makes it due at
        once); at the end of the window it is given up (``gave up: no callback_url``). The
        message's state is queryable with DR_QUERY all along.
        """
        excluded = ""
        if exclude_customers:
            ids = ", ".join(str(int(c)) for c in sorted(exclude_customers))
            excluded = f" AND o.customer_id NOT IN ({ids})"
        locking = " FOR UPDATE OF o SKIP LOCKED" if self.dialect == "postgresql" else ""
        with self._connect(write=True, durable=False) as conn:
            rows = self._run(
                conn,
                f"SELECT {_DUE_COLUMNS} FROM report_outbox AS o"
                " LEFT JOIN messages AS m ON m.sms_uid = o.sms_uid"
                " LEFT JOIN customers AS c ON c.id = o.customer_id"
                " WHERE o.done_ms IS NULL AND o.next_attempt_ms <= ?"
                " AND NOT EXISTS (SELECT 1 FROM report_outbox AS prior WHERE prior.sms_uid ="
                " o.sms_uid AND prior.id < o.id AND prior.done_ms IS NULL)"
                f"{excluded} ORDER BY o.next_attempt_ms, o.id LIMIT ?{locking}",
                (now_ms, limit),
            ).all()
            if not rows:
                return []
            # auth_key (customer) and sender (message) are never NULL in a row that exists.
            live = [r for r in rows if r[_AUTH_KEY] is not None and r[_SENDER] is not None]
            orphans = [r[0] for r in rows if r[_AUTH_KEY] is None or r[_SENDER] is None]
            # No callback URL (yet): nothing to push now. Held to the end of the retry window
            # (one UPDATE, then out of the due range), given up once that has passed.
            held = [
                {"rid": r[0], "at": r[_CREATED] + hold_ms}
                for r in live
                if not r[_CALLBACK_URL] and r[_CREATED] + hold_ms > now_ms
            ]
            unpushable = [
                r[0] for r in live if not r[_CALLBACK_URL] and r[_CREATED] + hold_ms <= now_ms
            ]
            live = [r for r in live if r[_CALLBACK_URL]]
            if held:
                conn.execute(
                    update(_o)
                    .where(_o.c.id == bindparam("rid"))
                    .values(next_attempt_ms=bindparam("at"), last_error=HELD, claimed_by=None),
                    held,
                )
            for chunk in _chunks([r[0] for r in live]):
                marks, values = in_list(chunk)
                self._run(
                    conn,
                    "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = ?"
                    f" WHERE id IN ({marks})",
                    (now_ms + lease_ms, claimer, *values),
                )
            for chunk in _chunks(orphans):
                conn.execute(
                    update(_o)
                    .where(_o.c.id.in_(chunk))
                    .values(done_ms=now_ms, last_error=GAVE_UP + "message or customer missing")
                )
            for chunk in _chunks(unpushable):
                marks, values = in_list(chunk)
                self._run(
                    conn,
                    f"UPDATE report_outbox SET done_ms = ?, last_error = ? WHERE id IN ({marks})",
                    (now_ms, GAVE_UP + "no callback_url", *values),
                )
            per_customer: dict[int, int] = {}
            for r in live:
                per_customer[r[2]] = per_customer.get(r[2], 0) + 1
            serials = {
                cid: iter(self._take_serials(conn, cid, n))
                for cid, n in sorted(per_customer.items())
            }
            return [
                DueReport(
                    id=id_,
                    sms_uid=uid,
                    customer_id=cid,
                    sms_state=sms_state,
                    result_desc=desc,
                    report_ms=report_ms,
                    created_ms=created_ms,
                    attempts=attempts,
                    next_attempt_ms=next_ms,
                    serial=next(serials[cid]),
                    sender=sender,
                    country_code=country_code,
                    dest_msisdn=dest,
                    customer_body=body,
                    segments=segments,
                    fee_micros=fee,
                    currency=currency,
                    callback_url=url,
                    auth_key=key,
                    callback_ca_pem=ca,
                )
                for (id_, uid, cid, sms_state, desc, report_ms, created_ms, attempts, next_ms,
                     sender, country_code, dest, body, segments, fee, currency, url, key,
                     ca) in live
            ]  # fmt: skip

    # --------------------------------------------------------------------------------- serials

    def next_serial(self, customer_id: int) -> int:
        """The next SERIAL for the customer's pushes: 1..65535, wrapping; persisted atomically."""
        return self.next_serials(customer_id, 1)[0]

    def next_serials(self, customer_id: int, n: int) -> list[int]:
        """``n`` consecutive serials (wrapping 65535 → 1) taken in one atomic UPDATE."""
        with self._connect(write=True) as conn:
            return self._take_serials(conn, customer_id, n)

    def _take_serials(self, conn: Connection, customer_id: int, n: int) -> list[int]:
        if n < 1:
            return []
        last = conn.execute(_BUMP_SERIAL, {"cid": customer_id, "n": n}).scalar_one_or_none()
        if last is None:
            raise StoreError(f"no customer {customer_id}")
        # last = (before + n - 1) % MAX + 1, so serial k (1-based) = (last - 1 - n + k) % MAX + 1
        return [(last - 1 - n + k) % SERIAL_MAX + 1 for k in range(1, n + 1)]

    # -------------------------------------------------------------------------------- outcomes

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        """Write what became of claimed reports, in one transaction (executemany per kind).

        ``defer`` maps customer_id → epoch ms: every pending report of that customer due
        earlier is moved to that time (a callback that is down gets probed, not hammered).
        Only pending rows change, so a late duplicate outcome never undoes a done report.
        """
        retry = [
            {"rid": r.id, "at": r.next_attempt_ms, "err": r.error[:1000], "inc": int(r.attempted)}
            for r in results
            if r.outcome == "retry"
        ]
        give_up = [
            {"rid": r.id, "now": now_ms, "err": (GAVE_UP + r.error)[:1000], "inc": int(r.attempted)}
            for r in results
            if r.outcome == "give_up"
        ]
        release = [
            {"rid": r.id, "at": r.next_attempt_ms} for r in results if r.outcome == "release"
        ]
        pending = _o.c.done_ms.is_(None)
        this = _o.c.id == bindparam("rid")
        attempts = _o.c.attempts + bindparam("inc", type_=Integer)
        with self._connect(write=True, durable=False) as conn:
            self._run_rows(
                conn,
                f"UPDATE report_outbox SET done_ms = {int(now_ms)}, attempts = attempts +"
                " CAST(v.column1 AS INTEGER), last_error = NULL, claimed_by = NULL"
                " FROM (VALUES {rows}) AS v"
                " WHERE report_outbox.id = v.column2 AND report_outbox.done_ms IS NULL",
                [(int(r.attempted), r.id) for r in results if r.outcome == "done"],
            )
            if retry:
                conn.execute(
                    update(_o)
                    .where(this, pending)
                    .values(
                        next_attempt_ms=bindparam("at"),
                        attempts=attempts,
                        last_error=bindparam("err"),
                        claimed_by=None,
                    ),
                    retry,
                )
            if give_up:
                conn.execute(
                    update(_o)
                    .where(this, pending)
                    .values(
                        done_ms=bindparam("now"),
                        attempts=attempts,
                        last_error=bindparam("err"),
                        claimed_by=None,
                    ),
                    give_up,
                )
            if release:
                conn.execute(
                    update(_o)
                    .where(this, pending)
                    .values(next_attempt_ms=bindparam("at"), claimed_by=None),
                    release,
                )
            self._run_rows(
                conn,
                "INSERT INTO report_attempts (outbox_id, sms_uid, attempted_ms, duration_ms,"
                " http_status, ok, answer) VALUES {rows}",
                [
                    (r.id, r.sms_uid, r.attempted_ms or now_ms, r.duration_ms, r.http_status,
                     r.outcome == "done", (r.answer or r.error or "")[:500])
                    for r in results
                    if r.attempted and r.sms_uid is not None
                ],
            )  # fmt: skip
            for cid, until in sorted((defer or {}).items()):
                conn.execute(
                    update(_o)
                    .where(_o.c.customer_id == cid, pending, _o.c.next_attempt_ms < until)
                    .values(next_attempt_ms=until)
                )

    def recover_claimed_reports(self, now_ms: int) -> int:
        """Reports claimed by workers whose lease ran out are due again at ``now_ms``.

        Without this they would wait for the end of their claim's lease (``report_lease_s``,
        minutes). Whether the dead worker had already pushed them is unknown: they are pushed
        again (at least once). Claims made without a claimer keep the lease rule. Returns how
        many reports were given back.
        """
        with self._connect(write=True, durable=False) as conn:
            result = self._run(
                conn,
                "UPDATE report_outbox SET next_attempt_ms = ?, claimed_by = NULL"
                " WHERE claimed_by IS NOT NULL AND done_ms IS NULL AND claimed_by NOT IN"
                f" (SELECT id FROM workers WHERE lease_until_ms > {db_now_sql(self.dialect)})",
                (now_ms,),
            )
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

    # ---------------------------------------------------------------------------------- expiry

    def expire_overdue(self, now_ms: int, older_than_ms: int, *, limit: int = 1000) -> int:
        """SUBMITTED messages submitted more than ``older_than_ms`` ago → EXPIRED (SMS_STATE 3).

        Up to ``limit`` messages per call, each with its EXPIRED report enqueued in the same
        transaction; returns how many expired (call again while it returns ``limit``). The
        UPDATE is guarded on the state, so a receipt applied concurrently wins cleanly.
        """
        cutoff = now_ms - older_than_ms
        overdue = (
            select(_m.c.sms_uid)
            .where(
                _m.c.state == MessageState.SUBMITTED.value,
                func.coalesce(_m.c.submitted_ms, _m.c.updated_ms) <= cutoff,
            )
            .order_by(_m.c.submitted_ms)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            overdue = overdue.with_for_update(skip_locked=True)
        with self._connect(write=True) as conn:
            uids = [row[0] for row in conn.execute(overdue)]
            expired: list[NewReport] = []
            for chunk in _chunks(uids):
                stmt = (
                    update(_m)
                    .where(_m.c.sms_uid.in_(chunk), _m.c.state == MessageState.SUBMITTED.value)
                    .values(
                        state=MessageState.EXPIRED.value,
                        sms_state=int(SmsState.EXPIRED),
                        result_desc=SmsState.EXPIRED.name,
                        final_ms=now_ms,
                        updated_ms=now_ms,
                    )
                    .returning(_m.c.sms_uid, _m.c.customer_id)
                )
                expired.extend(
                    NewReport.final(
                        sms_uid=uid,
                        customer_id=cid,
                        state=MessageState.EXPIRED,
                        result_desc=SmsState.EXPIRED.name,
                        report_ms=now_ms,
                    )
                    for uid, cid in conn.execute(stmt)
                )
            self.enqueue_reports(conn, expired, now_ms=now_ms)
            return len(expired)

    # ---------------------------------------------------------------------------- observability

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


def insert_fresh_reports(conn: Connection, dialect: str, reports: Sequence[NewReport]) -> None:
    """Reports of messages created in this very transaction: no guard needed, one executemany.

    Each row is enqueued, and due, at its ``report_ms``. The accept path
    (``MessageOps.accept_packets``) uses it for LOCAL_REJECTED recipients (SPEC §4); a module
    function, not a method, so that mixin needs no other mixin.
    """
    if reports:
        rows = [
            (r.sms_uid, r.customer_id, r.sms_state, r.result_desc, r.report_ms, ms, ms)
            for r in reports
            for ms in (r.report_ms,)
        ]
        conn.exec_driver_sql(_INSERT_FRESH[dialect], rows)


def _statement(r: NewReport) -> Any:
    return _ENQUEUE_INTERMEDIATE if r.sms_state in INTERMEDIATE_STATES else _ENQUEUE_FINAL


def _params(r: NewReport, now_ms: int) -> dict[str, Any]:
    return {
        "sms_uid": r.sms_uid,
        "customer_id": r.customer_id,
        "sms_state": r.sms_state,
        "result_desc": r.result_desc,
        "report_ms": r.report_ms,
        "now_ms": now_ms,
    }


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
