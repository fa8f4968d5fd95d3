"""Receipts over SMPP: the SMPP server's side of the report outbox, ``SmppReceiptOps``.

Strategy: a message submitted over SMPP with registered_delivery carries its account
(``messages.smpp_account_id``). Its reports are enqueued into ``report_outbox`` like any other
(``report_enqueue``: in the transaction of the state change, one per state, never lost); that
column is the marker telling the two readers apart: the HTTP pusher's claim skips such rows
(``report_ops``), the SMPP server claims them here, only for accounts that have a receiving
session bound, so the others simply wait in the outbox. The claim leases rows
(``next_attempt_ms = now + lease``), as the pusher's does: a process that dies mid-send leaves
them due again; per SMS_UID, a later state is never claimed before an earlier one is done.
"""

from __future__ import annotations

from collections.abc import Sequence

from cloudsms.domain.smpp_accounts import SmppReceipt
from cloudsms.storage.base import StoreBase
from cloudsms.storage.plain_sql import in_list, run
from cloudsms.storage.report_ops import NO_EARLIER_PENDING

#: Parameters: (now, *account ids, limit); ``{marks}`` from ``in_list``.
_CLAIM = (
    "SELECT o.id, o.sms_uid, m.smpp_account_id, m.smpp_receipt, o.sms_state, o.report_ms,"
    " o.attempts, m.sender, m.country_code, m.dest_msisdn, m.content, m.created_ms,"
    " m.smpp_message_id"
    " FROM report_outbox AS o JOIN messages AS m ON m.sms_uid = o.sms_uid"
    " WHERE o.done_ms IS NULL AND o.next_attempt_ms <= ? AND m.smpp_account_id IN ({marks})"
    f" AND {NO_EARLIER_PENDING}"
    " ORDER BY o.next_attempt_ms, o.id LIMIT ?{locking}"
)
_LOCKING = {"postgresql": " FOR UPDATE OF o SKIP LOCKED", "sqlite": ""}
#: Parameters: (next_attempt_ms, *ids).
_LEASE = "UPDATE report_outbox SET next_attempt_ms = ? WHERE id IN ({marks})"
#: Parameters: (done_ms, *ids); ``{marks}`` from ``in_list``. One statement for a round's
#: answered receipts: a round of a window of 100 settled row by row held SQLite's write lock
#: (and, through the gate, the event loop) long enough to show in submit_sm_resp latency.
_DONE = (
    "UPDATE report_outbox SET done_ms = ?, attempts = attempts + 1, last_error = NULL"
    " WHERE id IN ({marks}) AND done_ms IS NULL"
)
#: Done without a receipt (registered_delivery asked for failures only, say). (done_ms, note, id)
_SKIPPED = "UPDATE report_outbox SET done_ms = ?, last_error = ? WHERE id = ? AND done_ms IS NULL"
#: Parameters: (next_attempt_ms, last_error, id).
_RETRY = (
    "UPDATE report_outbox SET next_attempt_ms = ?, attempts = attempts + 1, last_error = ?"
    " WHERE id = ? AND done_ms IS NULL"
)


#: Most ids in one IN (...) list.
_CHUNK = 500


class SmppReceiptOps(StoreBase):
    """Claiming and settling the outbox rows that go out as deliver_sm receipts."""

    def claim_smpp_receipts(
        self, account_ids: Sequence[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppReceipt]:
        """Claim up to ``limit`` due receipts of these accounts for ``lease_ms``, oldest first."""
        if not account_ids or limit <= 0:
            return []
        marks, ids = in_list(list(account_ids))
        # A read first: polled while sessions are bound, the claim must not take SQLite's write
        # lock (BEGIN IMMEDIATE) when nothing is due, which is most of the time.
        with self._connect(write=False) as conn:
            due = run(conn, self.dialect, _CLAIM.format(marks=marks, locking=""), (now_ms, *ids, 1))
            if due.first() is None:
                return []
        sql = _CLAIM.format(marks=marks, locking=_LOCKING[self.dialect])
        with self._connect(write=True, durable=False) as conn:
            rows = run(conn, self.dialect, sql, (now_ms, *ids, limit)).fetchall()
            if rows:
                lease_marks, outbox_ids = in_list([r[0] for r in rows])
                run(
                    conn,
                    self.dialect,
                    _LEASE.format(marks=lease_marks),
                    (now_ms + lease_ms, *outbox_ids),
                )
        return [
            SmppReceipt(
                outbox_id=r[0],
                sms_uid=r[1],
                account_id=r[2],
                mode=r[3] or 0,
                sms_state=r[4],
                report_ms=r[5],
                attempts=r[6],
                sender=r[7],
                country_code=r[8],
                dest_msisdn=r[9],
                content=r[10],
                created_ms=r[11],
                message_id=r[12] or r[1],
            )
            for r in rows
        ]

    def record_smpp_receipts(
        self,
        *,
        now_ms: int,
        done: Sequence[int] = (),
        skipped: Sequence[tuple[int, str]] = (),
        retry: Sequence[tuple[int, int, str]] = (),
    ) -> None:
        """Settle claimed rows in one transaction: ``done`` ids (answered ESME_ROK),
        ``skipped`` (id, why) done without a receipt, ``retry`` (id, next attempt ms, error)."""
        if not (done or skipped or retry):
            return
        with self._connect(write=True, durable=False) as conn:
            for start in range(0, len(done), _CHUNK):
                marks, ids = in_list(list(done[start : start + _CHUNK]))
                run(conn, self.dialect, _DONE.format(marks=marks), (now_ms, *ids))
            for outbox_id, why in skipped:
                run(conn, self.dialect, _SKIPPED, (now_ms, why[:1000], outbox_id))
            for outbox_id, next_ms, error in retry:
                run(conn, self.dialect, _RETRY, (next_ms, error[:1000], outbox_id))
