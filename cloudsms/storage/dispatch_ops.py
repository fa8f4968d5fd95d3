"""Store operations of the carrier side: claiming due messages, recording submits and receipts.

Strategy: the dispatcher sends everything it learns — a message's submit outcome, a carrier
receipt — through one ordered queue into :meth:`DispatchOps.record_dispatch`, which applies a
batch of them in ONE transaction (group commit, like the accept path). Order inside a batch is
outcomes first, then receipts, so a receipt that arrives right after its submit_sm_resp always
finds the carrier-id mapping (SPEC §7: Jasmin lost such receipts). A receipt that still finds no
mapping — the carrier answered on the RX link before the TX link's response, or the id is
unknown — is stored unmatched in ``receipts``; when a later outcome records that carrier id, the
waiting receipt is applied in the same transaction. Nothing is lost and nothing is matched twice.

Final states enqueue the customer's report in the same transaction (outbox), so a state change
and its report are one durable fact.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from cloudsms.domain.codes import LOCAL_REJECTED, SmsState
from cloudsms.domain.dlr import (
    FINAL_MESSAGE_STATE,
    INTERMEDIATE,
    STAT_TO_SMS_STATE,
    message_outcome,
)
from cloudsms.domain.pipeline import (
    DispatchResult,
    DueReport,
    NewReport,
    OutboundMessage,
    PartResult,
    ReceiptEvent,
    ReportClaim,
    SubmitOutcome,
)
from cloudsms.domain.status import MessageState, customer_state, sources_of
from cloudsms.storage import tables
from cloudsms.storage.base import StoreBase
from cloudsms.storage.lease_ops import DB_NOW_SQL
from cloudsms.storage.plain_sql import fetch_rows, in_list, json_list, quoted
from cloudsms.storage.report_enqueue import Preclaim, enqueue_report, enqueue_reports
from cloudsms.storage.report_ops import claim_reports, take_serials

_m = tables.messages.c
_p = tables.message_parts.c
_r = tables.receipts.c
#: What a claim returns, in the order of OutboundMessage's fields.
_CLAIM_COLUMNS = (
    "sms_uid, customer_id, country_code, dest_msisdn, route_name, sender, content, encoding,"
    " segments, priority, attempts, fee_micros, expires_ms"
)
_ACCEPTED = MessageState.ACCEPTED.value
_QUEUED = MessageState.QUEUED.value
_SUBMITTED = MessageState.SUBMITTED.value

# --- state guards, from the state table (status.sources_of) ---------------------------------

#: What a claim takes (ACCEPTED), what a submit moves (QUEUED), what goes back to the queue.
_CLAIMABLE = quoted(sources_of(MessageState.QUEUED))
#: Claims compare the state with ``=``, the form the partial index ``ix_messages_due`` is
#: declared with (``state = 'accepted'``): SQLite uses a partial index only for a WHERE that
#: contains its condition as written.
if f"'{_ACCEPTED}'" != _CLAIMABLE:
    raise ValueError(f"claims take {_CLAIMABLE}, ix_messages_due holds '{_ACCEPTED}' only")
_SUBMITTABLE = quoted(sources_of(MessageState.SUBMITTED))
_REQUEUEABLE_STATES = sources_of(MessageState.ACCEPTED)
_REQUEUEABLE = quoted(_REQUEUEABLE_STATES)
#: An outcome answers the submit of a claimed message: only QUEUED messages are finished by one.
_FINISHABLE = {
    final: sources_of(final, among=[MessageState.QUEUED])
    for final in (MessageState.REJECTED, MessageState.FAILED)
}
#: The states a carrier receipt may finish: those every receipt's final state may come from.
_DECIDABLE_STATES = frozenset.intersection(
    *(sources_of(state) for state in FINAL_MESSAGE_STATE.values())
)
_DECIDABLE = quoted(_DECIDABLE_STATES)

# --- statements (plain SQL, see plain_sql) ----------------------------------------------------

#: The state guard of the statements keyed by SMS_UID: checked on each row found by its key,
#: never served by the partial indexes on the state (``tables.unindexed``).
_STATE = tables.unindexed("messages.state")

#: recover_in_flight, per engine (leases are judged by the database's clock). The redundant
#: ``tables.ACCEPTED_OR_QUEUED`` lets SQLite read the live queue through ``ix_messages_backlog``
#: instead of scanning every message ever stored (every ten seconds, under the write lock).
if not {str(s) for s in _REQUEUEABLE_STATES} <= {"accepted", "queued"}:
    raise ValueError(f"recovery takes {_REQUEUEABLE}, ix_messages_backlog holds accepted/queued")
_RECOVER = {
    dialect: f"UPDATE messages SET state = '{_ACCEPTED}', claimed_by = NULL"
    f" WHERE state IN ({_REQUEUEABLE}) AND {tables.ACCEPTED_OR_QUEUED}"
    " AND (claimed_by IS NULL OR claimed_by NOT IN"
    f" (SELECT id FROM workers WHERE lease_until_ms > {now}))"
    for dialect, now in DB_NOW_SQL.items()
}
#: A message past its own deadline (SMPP validity_period) is left to the expiry job, never sent.
_NOT_PAST_DEADLINE = " AND (expires_ms IS NULL OR expires_ms > ?)"
#: claim_due: the due messages of one priority. ``{left}`` is empty or _LEFT_TO_OWNERS.
#: Parameters: (priority, now, now, *connector ids, limit).
_DUE = (
    f"SELECT sms_uid FROM messages WHERE state = {_CLAIMABLE} AND priority = ?"
    f" AND send_at_ms <= ?{_NOT_PAST_DEADLINE}{{left}} ORDER BY send_at_ms LIMIT ?"
)
_LEFT_TO_OWNERS = " AND (via_connector IS NULL OR via_connector NOT IN ({marks}))"
#: claim_handed_off: parameters (connector id, now, now, limit).
_DUE_HANDED_OFF = (
    f"SELECT sms_uid FROM messages WHERE via_connector = ? AND state IN ({_CLAIMABLE})"
    f" AND send_at_ms <= ?{_NOT_PAST_DEADLINE} ORDER BY send_at_ms LIMIT ?"
)
_SKIP_LOCKED = {"postgresql": " FOR UPDATE SKIP LOCKED", "sqlite": ""}
#: Claim what ``{due}`` finds. Parameters: (claimer, now, *the due SELECT's).
_CLAIM = (
    f"UPDATE messages SET state = '{_QUEUED}', attempts = attempts + 1, claimed_by = ?,"
    " via_connector = NULL, updated_ms = ? WHERE sms_uid IN ({due})"
    f" RETURNING {_CLAIM_COLUMNS}"
)
#: Outcomes apply to a message still QUEUED, and with a claimer only under its claim.
_MINE = " AND claimed_by = ?"
#: A submit's outcome. The carrier id (NULL for a message of several submit_sm, whose ids are
#: ``message_parts`` rows) is kept if one is there already: the first submission's id wins, as
#: a part's does (``ON CONFLICT DO NOTHING``), and the connector goes with it.
_SUBMITTED_ROWS = (
    f"UPDATE messages SET state = '{_SUBMITTED}', connector_id = CASE WHEN"
    " messages.carrier_id IS NULL THEN CAST(v.column1 AS INTEGER) ELSE messages.connector_id"
    " END, carrier_id = COALESCE(messages.carrier_id, CAST(v.column2 AS VARCHAR)),"
    " submitted_ms = CAST(v.column3 AS BIGINT), updated_ms = CAST(v.column4 AS BIGINT)"
    " FROM (VALUES {rows}) AS v"
    f" WHERE messages.sms_uid = v.column5 AND {_STATE} IN ({_SUBMITTABLE})"
)
_SUBMITTED_MINE = _SUBMITTED_ROWS + " AND messages.claimed_by = CAST(v.column6 AS INTEGER)"
#: A one-part submit whose outcome did not apply (the claim was lost meanwhile: another worker
#: has the message now) still records its carrier id if the message has none, so its receipt
#: matches; a no-op lookup for the rows _SUBMITTED_ROWS just wrote.
_CARRIER_ID_IF_NONE = (
    "UPDATE messages SET connector_id = CAST(v.column1 AS INTEGER),"
    " carrier_id = CAST(v.column2 AS VARCHAR) FROM (VALUES {rows}) AS v"
    " WHERE messages.sms_uid = v.column3 AND messages.carrier_id IS NULL"
)
#: Parameters: (send_at, detail, now, uid[, claimer]).
_RETRY = (
    f"UPDATE messages SET state = '{_ACCEPTED}', send_at_ms = ?, detail = ?, updated_ms = ?"
    f" WHERE sms_uid = ? AND state IN ({_REQUEUEABLE})"
)
#: The claim is undone (one attempt less): the owner's claim counts the attempt.
#: Parameters: (connector id, uid[, claimer]).
_HANDOFF = (
    f"UPDATE messages SET state = '{_ACCEPTED}', via_connector = ?, claimed_by = NULL,"
    f" attempts = attempts - 1 WHERE sms_uid = ? AND state IN ({_REQUEUEABLE})"
)
#: _finish: parameters (state, sms_state, result_desc, final_ms, now, detail, connector id,
#: fee, uid, the state read). ``{sources}`` from _FINISHABLE.
_FINISH = (
    "UPDATE messages SET state = ?, sms_state = ?, result_desc = ?, final_ms = ?,"
    " updated_ms = ?, detail = COALESCE(?, detail), connector_id = COALESCE(?, connector_id),"
    " fee_micros = ? WHERE sms_uid = ? AND state = ? AND state IN ({sources})"
)
_FINISH_READ = "SELECT customer_id, fee_micros, state, claimed_by FROM messages WHERE sms_uid = ?"
_FINISH_BY = {final: _FINISH.replace("{sources}", quoted(s)) for final, s in _FINISHABLE.items()}
_REFUND = "UPDATE customers SET balance_micros = balance_micros + ? WHERE id = ?"
#: _settle: a receipt's final state, if the message is still in the state read.
_DECIDE = (
    "UPDATE messages SET state = CAST(v.column1 AS VARCHAR),"
    " sms_state = CAST(v.column2 AS INTEGER), result_desc = CAST(v.column3 AS VARCHAR),"
    " final_ms = CAST(v.column4 AS BIGINT), updated_ms = CAST(v.column5 AS BIGINT),"
    " receipt_stat = COALESCE(CAST(v.column6 AS VARCHAR), messages.receipt_stat),"
    " receipt_err = COALESCE(CAST(v.column7 AS VARCHAR), messages.receipt_err)"
    " FROM (VALUES {rows}) AS v WHERE messages.sms_uid = v.column8"
    f" AND messages.state = v.column9 AND {_STATE} IN ({_DECIDABLE})"
)
#: What a report's packet needs of its message (``DueReport``), read with the message's state
#: by the statements that decide it, so the reports this transaction claims are built from them
#: and not read back (``_claimed_reports``).
_REPORT_FACTS = "sender, country_code, dest_msisdn, customer_body, segments, fee_micros, currency"
#: A one-part submit and its final receipt recorded in the same transaction (a carrier that
#: answers within the group commit: the simulator always, fast carriers often): one UPDATE of
#: the message, where _SUBMITTED_ROWS then _DECIDE wrote it twice and the receipt's match read
#: it twice. Only a message with no carrier id yet (as _SUBMITTED_ROWS keeps the first one);
#: what this does not apply goes the usual way. ``{mine}`` is empty or the claim's guard.
_SUBMITTED_AND_DECIDED = (
    "UPDATE messages SET state = CAST(v.column1 AS VARCHAR),"
    " sms_state = CAST(v.column2 AS INTEGER), result_desc = CAST(v.column3 AS VARCHAR),"
    " final_ms = CAST(v.column4 AS BIGINT), updated_ms = CAST(v.column5 AS BIGINT),"
    " receipt_stat = CAST(v.column6 AS VARCHAR), receipt_err = CAST(v.column7 AS VARCHAR),"
    " connector_id = CAST(v.column8 AS INTEGER), carrier_id = CAST(v.column9 AS VARCHAR),"
    " submitted_ms = CAST(v.column10 AS BIGINT)"
    " FROM (VALUES {rows}) AS v WHERE messages.sms_uid = v.column11"
    f" AND {_STATE} IN ({_SUBMITTABLE}) AND messages.carrier_id IS NULL{{mine}}"
    " RETURNING messages.sms_uid, messages.customer_id, messages.smpp_account_id,"
    + ", ".join(f"messages.{c}" for c in _REPORT_FACTS.split(", "))
)
_SUBMITTED_AND_DECIDED_BY = {
    False: _SUBMITTED_AND_DECIDED.replace("{mine}", ""),
    True: _SUBMITTED_AND_DECIDED.replace(
        "{mine}", " AND messages.claimed_by = CAST(v.column12 AS INTEGER)"
    ),
}
#: Receipts, parts and messages by key; ``{marks}`` from plain_sql.in_list.
_WAITING = (
    "SELECT id, connector_id, carrier_id, stat, err, raw, received_ms FROM receipts"
    " WHERE sms_uid IS NULL AND connector_id = ? AND carrier_id IN ({marks})"
)
_MATCHED = "DELETE FROM receipts WHERE id IN ({marks})"
#: Receipts of one-part messages: the carrier id on the message (``ix_messages_carrier``).
_MESSAGES_BY_CARRIER_ID = (
    "SELECT carrier_id, sms_uid FROM messages WHERE connector_id = ? AND carrier_id IN ({marks})"
)
_PARTS_BY_CARRIER_ID = (
    "SELECT carrier_id, sms_uid, seq FROM message_parts WHERE connector_id = ?"
    " AND carrier_id IN ({marks})"
)
#: The same on PostgreSQL: one probe of the index per carrier id, the ids one JSON parameter
#: (``plain_sql.json_list``). A LATERAL join whose subquery ends ``OFFSET 0`` can only be
#: planned that way: without it PostgreSQL may pull the subquery up into a hash join over every
#: carrier id of the connector, as it did once the ids came from JSON, estimated at 100 rows
#: (17.6 ms against 0.3). With an IN list, a table that had grown since its last ANALYZE
#: (always, under load: autovacuum looks once a minute) was read as a bitmap of every id of the
#: connector, dead entries included, joined by hash: 28 ms for 300 ids after a 20,000-message
#: run (``EXPLAIN ANALYZE``), against 0.6 ms for 300 probes. Parameters: (ids, connector id).
_CARRIER_IDS = "json_array_elements_text(CAST(? AS json)) AS k(id)"
_LATERAL_BY_CARRIER_ID = {
    "messages": f"SELECT k.id, m.sms_uid FROM {_CARRIER_IDS} CROSS JOIN LATERAL"
    " (SELECT sms_uid FROM messages WHERE connector_id = ? AND carrier_id = k.id OFFSET 0) AS m",
    "parts": f"SELECT k.id, p.sms_uid, p.seq FROM {_CARRIER_IDS} CROSS JOIN LATERAL"
    " (SELECT sms_uid, seq FROM message_parts WHERE connector_id = ? AND carrier_id = k.id"
    " OFFSET 0) AS p",
}
_MESSAGE_STATES = (
    f"SELECT sms_uid, state, customer_id, smpp_account_id, {_REPORT_FACTS} FROM messages"
    " WHERE sms_uid IN ({marks})"
)
#: The callback and key of the customers whose reports a dispatch transaction claims.
_CALLBACKS = (
    "SELECT id, callback_url, auth_key, callback_ca_pem FROM customers WHERE id IN ({marks})"
)
_PART_STATS = "SELECT sms_uid, receipt_stat FROM message_parts WHERE sms_uid IN ({marks})"
#: _settle: an intermediate state (no change of machine state). Parameters: (sms_state, now,
#: receipt stat, receipt err — NULL for a message of several parts —, uid).
_INTERMEDIATE = (
    "UPDATE messages SET sms_state = ?, updated_ms = ?,"
    " receipt_stat = COALESCE(?, receipt_stat), receipt_err = COALESCE(?, receipt_err)"
    " WHERE sms_uid = ?"
)
#: The seq a receipt matched on the message itself (one-part message) is given in the mapping.
_ON_MESSAGE = 0

#: Outcomes whose fee goes back to the customer: the message never reached a carrier because of
#: the platform itself (SPEC §4: "a recipient rejected locally is not charged").
_REFUNDED = frozenset({"rejected", "unsendable"})

#: Most ids in one IN (...) list (SQLite's default variable limit is 32766; stay well below).
_CHUNK = 500


@dataclass(slots=True)
class _Decided:
    """A message made final in the UPDATE that recorded its submit (_SUBMITTED_AND_DECIDED)."""

    sms_uid: str
    customer_id: int
    smpp_account_id: int | None
    outcome: SmsState
    event: ReceiptEvent
    #: The message's ``_REPORT_FACTS``.
    facts: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Taken:
    """The final reports a dispatch transaction wrote claimed for this process's pusher."""

    #: Their SMS_UIDs (written claimed unless an earlier report of theirs is still pending).
    sms_uids: list[str]
    #: Their claim, built from what the transaction read; None: read it back (``claim_reports``).
    reports: list[DueReport] | None


_NONE = _Taken([], None)


class DispatchOps(StoreBase):
    """The carrier side's operations on messages (claims, outcomes, receipts)."""

    def recover_in_flight(self) -> int:
        """Claims of dead workers go back to the queue: QUEUED → ACCEPTED (resubmitted).

        A claim is dead when its worker's lease (``workers.lease_until_ms``, database clock) has
        run out, or when it has no claimer (claimed before schema 0007, or by ``claim_due``
        without a claimer). Claims of live workers are never touched, so every worker may call
        this at any time (each does, every second). A message its dead claimer had already
        handed to the carrier is sent again: the documented at-least-once window for a crash
        (docs/operations.md).
        """
        with self._connect(write=True) as conn:
            return int(self._run(conn, _RECOVER[self.dialect]).rowcount or 0)

    def claim_due(
        self,
        now_ms: int,
        limit: int,
        *,
        claimer: int | None = None,
        leave_to: Collection[int] = (),
    ) -> list[OutboundMessage]:
        """Up to ``limit`` due ACCEPTED messages, high PRIORITY first, moved to QUEUED.

        ``claimer`` (a ``workers.id``) is recorded on each message: only that worker's outcomes
        apply to it, and it is recovered if that worker dies. Messages handed to one of the
        connectors in ``leave_to`` (live and owned by another worker) are left for that owner
        (:meth:`claim_handed_off`); hand-offs to any other connector are claimed and routed
        again.
        """
        left, left_ids = "", ()
        if leave_to:
            marks, left_ids = in_list(sorted(int(c) for c in leave_to))
            left = _LEFT_TO_OWNERS.replace("{marks}", marks)
        due = _DUE.replace("{left}", left)
        claimed: list[OutboundMessage] = []
        with self._connect(write=True, durable=False) as conn:
            # One range scan of ix_messages_dispatch (state, priority, send_at_ms) per priority,
            # high first: no sort of the whole backlog, however long it is.
            for priority in (1, 0):
                want = limit - len(claimed)
                if want <= 0:
                    break
                params = (priority, now_ms, now_ms, *left_ids, want)
                claimed.extend(self._take(conn, due, params, now_ms, claimer))
        claimed.sort(key=lambda m: (-m.priority, m.sms_uid))
        return claimed

    def claim_handed_off(
        self, now_ms: int, claimer: int, limits: Mapping[int, int]
    ) -> dict[int, list[OutboundMessage]]:
        """Messages other workers routed to our connectors: up to ``limits[connector]`` each.

        Uses the small partial index ix_messages_handoff (only hand-offs are in it).
        """
        found: dict[int, list[OutboundMessage]] = {}
        due = _DUE_HANDED_OFF
        with self._connect(write=True, durable=False) as conn:
            for connector_id, limit in sorted(limits.items()):
                if limit <= 0:
                    continue
                taken = self._take(
                    conn, due, (connector_id, now_ms, now_ms, limit), now_ms, claimer
                )
                if taken:
                    found[connector_id] = taken
        return found

    def _take(
        self, conn: Connection, due: str, params: tuple[object, ...], now_ms: int,
        claimer: int | None,
    ) -> list[OutboundMessage]:  # fmt: skip
        """Claim the rows the ``due`` SELECT finds: QUEUED, one more attempt, ours."""
        claim = _CLAIM.replace("{due}", due + _SKIP_LOCKED[self.dialect])
        rows = self._run(conn, claim, (claimer, now_ms, *params))
        return [OutboundMessage(*row) for row in rows]

    def record_dispatch(
        self,
        outcomes: Sequence[SubmitOutcome],
        receipts: Sequence[ReceiptEvent],
        now_ms: int,
        *,
        claimer: int | None = None,
        report_claim: ReportClaim | None = None,
    ) -> DispatchResult:
        """Apply outcomes, then receipts, in one transaction (see the module docstring).

        With ``report_claim``, the reports this transaction enqueues are claimed in it too and
        returned in ``claimed_reports`` (see :class:`~cloudsms.domain.pipeline.ReportClaim`).

        With ``claimer``, an outcome applies only to a message still QUEUED under that claim: a
        worker that lost its lease (its claims recovered, perhaps claimed again by another
        worker) cannot overwrite what the new claimer does. Its submitted segments are still
        kept (``message_parts``, first submission wins), so their receipts still match.
        """
        result = DispatchResult()
        claim = report_claim if report_claim is not None and report_claim.limit > 0 else None
        with self._connect(write=True) as conn:
            decided, outcomes, receipts = self._submitted_and_decided(
                conn, outcomes, receipts, now_ms, claimer
            )
            result.matched += len(decided)
            new_ids = self._apply_outcomes(conn, outcomes, now_ms, result, claimer)
            new_ids += [(d.event.connector_id, d.event.carrier_id) for d in decided]
            waiting = self._waiting_receipts(conn, new_ids)
            taken = self._apply_receipts(conn, receipts, waiting, now_ms, result, claim, decided)
            if claim is not None and result.reported:
                result.claimed_reports = self._claim_enqueued(
                    conn, now_ms, claim, taken, result.reported
                )
        return result

    def _claim_enqueued(
        self, conn: Connection, now_ms: int, claim: ReportClaim, taken: _Taken,
        reported: Sequence[str],
    ) -> list[DueReport]:  # fmt: skip
        """The reports this transaction enqueued, claimed for this process's pusher.

        Those written claimed already (``taken``) come built, or are read back when they could
        not be built; the others (failures finished by an outcome, intermediate states) are
        claimed as the pusher's claim does.
        """

        def take(
            uids: Sequence[str], limit: int, preclaimed: bool, full: Collection[int] = ()
        ) -> list[DueReport]:
            return claim_reports(
                conn, self.dialect, now_ms, limit, lease_ms=claim.lease_ms,
                claimer=claim.claimer, hold_ms=claim.hold_ms, sms_uids=uids,
                preclaimed=preclaimed, exclude_customers=full,
            )  # fmt: skip

        preclaimed = taken.sms_uids
        got = taken.reports
        if got is None:
            got = take(preclaimed, claim.limit, True) if preclaimed else []
        skip = set(preclaimed)
        rest = [uid for uid in reported if uid not in skip]
        if rest and claim.limit > len(got):
            used = Counter(r.customer_id for r in got)
            full = [c for c, room in claim.customer_room.items() if room <= used[c]]
            got += take(rest, claim.limit - len(got), False, full)
        return got

    # -- a submit and its receipt in one batch ---------------------------------------------

    def _submitted_and_decided(
        self, conn: Connection, outcomes: Sequence[SubmitOutcome],
        receipts: Sequence[ReceiptEvent], now_ms: int, claimer: int | None,
    ) -> tuple[list[_Decided], Sequence[SubmitOutcome], Sequence[ReceiptEvent]]:  # fmt: skip
        """Apply one-part submits together with their final receipt of the same batch.

        Returns what was decided this way, and the outcomes and receipts left for the usual
        path (those without a partner here, and those the guarded UPDATE did not apply to).
        """
        submits: dict[tuple[int, str], SubmitOutcome] = {}
        for outcome in outcomes:
            if outcome.kind == "submitted" and len(outcome.parts) == 1:
                carrier_id = outcome.parts[0].carrier_id
                if carrier_id is not None and outcome.connector_id is not None:
                    submits[(outcome.connector_id, carrier_id)] = outcome
        if not submits or not receipts:
            return [], outcomes, receipts
        pairs: dict[str, tuple[SubmitOutcome, ReceiptEvent, SmsState]] = {}
        for event in receipts:
            key = (event.connector_id, event.carrier_id)
            if key not in submits:
                continue
            outcome = submits.pop(key)
            decision = message_outcome(1, [_stat_state(event.stat)])
            if decision is not None and outcome.sms_uid not in pairs:
                pairs[outcome.sms_uid] = (outcome, event, decision)
        if not pairs:
            return [], outcomes, receipts
        mine = () if claimer is None else (claimer,)
        rows = []
        for uid, (outcome, event, decision) in pairs.items():
            final = FINAL_MESSAGE_STATE[decision]
            sms_state, desc = customer_state(final, None, decision.name)
            rows.append(
                (final.value, int(sms_state), desc, event.report_ms, now_ms, event.stat,
                 event.err, outcome.connector_id, event.carrier_id, now_ms, uid, *mine)
            )  # fmt: skip
        sql = _SUBMITTED_AND_DECIDED_BY[claimer is not None]
        decided = [
            _Decided(uid, customer_id, smpp_account, pairs[uid][2], pairs[uid][1], tuple(facts))
            for uid, customer_id, smpp_account, *facts in fetch_rows(conn, self.dialect, sql, rows)
        ]
        done_outcomes = {id(pairs[d.sms_uid][0]) for d in decided}
        done_receipts = {id(d.event) for d in decided}
        return (
            decided,
            [o for o in outcomes if id(o) not in done_outcomes],
            [r for r in receipts if id(r) not in done_receipts],
        )

    # -- outcomes ---------------------------------------------------------------------------

    def _apply_outcomes(
        self, conn: Connection, outcomes: Sequence[SubmitOutcome], now_ms: int,
        result: DispatchResult, claimer: int | None,
    ) -> list[tuple[int, str]]:  # fmt: skip
        parts: list[tuple[object, ...]] = []
        new_ids: list[tuple[int, str]] = []
        mine = () if claimer is None else (claimer,)
        submitted: list[tuple[object, ...]] = []
        retries: list[tuple[object, ...]] = []
        handoffs: list[tuple[object, ...]] = []
        one_part: list[tuple[object, ...]] = []
        for outcome in outcomes:
            if outcome.kind == "submitted":
                # One submit_sm: its carrier id goes on the message row; several: part rows.
                single = outcome.parts[0] if len(outcome.parts) == 1 else None
                carrier_id = single.carrier_id if single is not None else None
                submitted.append(
                    (outcome.connector_id, carrier_id, now_ms, now_ms, outcome.sms_uid, *mine)
                )
                if single is not None and carrier_id is not None:
                    one_part.append((outcome.connector_id, carrier_id, outcome.sms_uid))
                for part in outcome.parts if single is None else ():
                    parts.append(
                        (outcome.sms_uid, part.seq, outcome.connector_id, part.carrier_id,
                         part.status, now_ms)
                    )  # fmt: skip
                for part in outcome.parts:
                    if part.carrier_id is not None and outcome.connector_id is not None:
                        new_ids.append((outcome.connector_id, part.carrier_id))
            elif outcome.kind == "retry":
                retries.append(
                    (outcome.retry_at_ms or now_ms, clip_detail(outcome.detail), now_ms,
                     outcome.sms_uid, *mine)
                )  # fmt: skip
            elif outcome.kind == "handoff":
                handoffs.append((outcome.connector_id, outcome.sms_uid, *mine))
            else:
                final = MessageState.REJECTED if outcome.kind == "rejected" else MessageState.FAILED
                desc = LOCAL_REJECTED if outcome.kind == "rejected" else None
                self._finish(
                    conn, outcome.sms_uid, final, now_ms, now_ms, result,
                    detail=outcome.detail, result_desc=desc,
                    refund=outcome.kind in _REFUNDED, connector_id=outcome.connector_id,
                    claimer=claimer,
                )  # fmt: skip
        only_mine = "" if claimer is None else _MINE
        applied = self._run_rows(
            conn, _SUBMITTED_ROWS if claimer is None else _SUBMITTED_MINE, submitted
        )
        if applied < len(submitted):
            # Some outcome did not apply (its claim was lost): keep the carrier ids anyway.
            self._run_rows(conn, _CARRIER_ID_IF_NONE, one_part)
        self._run_many(conn, _RETRY + only_mine, retries)
        result.requeued += len(retries)
        self._run_many(conn, _HANDOFF + only_mine, handoffs)
        result.handed_off += len(handoffs)
        # First submission wins: after a lost lease, two workers may both have submitted.
        self._run_rows(
            conn,
            "INSERT INTO message_parts (sms_uid, seq, connector_id, carrier_id, submit_status,"
            " submitted_ms) VALUES {rows} ON CONFLICT DO NOTHING",
            parts,
        )
        return new_ids

    # -- receipts ---------------------------------------------------------------------------

    def _waiting_receipts(
        self, conn: Connection, new_ids: list[tuple[int, str]]
    ) -> list[ReceiptEvent]:
        """Receipts stored unmatched earlier whose carrier id was just recorded."""
        found: list[ReceiptEvent] = []
        for connector_id, ids in _by_connector(new_ids).items():
            for chunk in _chunks(ids):
                marks, values = in_list(chunk)
                sql = _WAITING.replace("{marks}", marks)
                rows = self._run(conn, sql, (connector_id, *values)).all()
                found.extend(_receipt_from_row(*row[1:]) for row in rows)
                if rows:
                    marks, values = in_list([row[0] for row in rows])
                    self._run(conn, _MATCHED.replace("{marks}", marks), values)
        return found

    def _apply_receipts(
        self, conn: Connection, receipts: Sequence[ReceiptEvent],
        waiting: Sequence[ReceiptEvent], now_ms: int, result: DispatchResult,
        claim: ReportClaim | None, decided: Sequence[_Decided] = (),
    ) -> _Taken:  # fmt: skip
        """Match and apply receipts; the reports written claimed for this process's pusher.

        Only receipts that match nothing get a ``receipts`` row (they wait for their
        submit_sm_resp, or are an operator's to look at); a matched one is written on its
        part, or on the message when it was one submit_sm. The reports of ``decided``
        messages (already final) are written with the others.
        """
        events = [*waiting, *receipts]
        if not events:
            return self._settle(conn, {}, now_ms, result, claim, decided) if decided else _NONE
        mapping = self._lookup_parts(conn, [(e.connector_id, e.carrier_id) for e in events])
        stored: list[tuple[object, ...]] = []
        part_updates: list[tuple[object, ...]] = []
        touched: dict[str, tuple[ReceiptEvent, bool]] = {}
        for event in events:
            part = mapping.get((event.connector_id, event.carrier_id))
            if part is None:
                stored.append(
                    (event.connector_id, event.carrier_id, event.stat, event.err, None,
                     event.raw, event.report_ms)
                )  # fmt: skip
                result.unmatched += 1
                continue
            result.matched += 1
            on_message = part[1] == _ON_MESSAGE
            if not on_message:
                part_updates.append((event.stat, event.err, event.report_ms, part[0], part[1]))
            touched[part[0]] = (event, on_message)
        self._run_rows(
            conn,
            "INSERT INTO receipts (connector_id, carrier_id, stat, err, sms_uid, raw, received_ms)"
            " VALUES {rows}",
            stored,
        )
        self._run_rows(
            conn,
            "UPDATE message_parts SET receipt_stat = CAST(v.column1 AS VARCHAR),"
            " receipt_err = CAST(v.column2 AS VARCHAR), done_ms = CAST(v.column3 AS BIGINT)"
            " FROM (VALUES {rows}) AS v"
            " WHERE message_parts.sms_uid = v.column4 AND message_parts.seq = v.column5",
            part_updates,
        )
        if not touched and not decided:
            return _NONE
        return self._settle(conn, touched, now_ms, result, claim, decided)

    def _lookup_parts(
        self, conn: Connection, keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], tuple[str, int]]:
        """(connector, carrier id) → (SMS_UID, seq): on a message (seq ``_ON_MESSAGE``), else
        on a part (messages of several submit_sm, and one-part messages stored before 0014)."""
        found: dict[tuple[int, str], tuple[str, int]] = {}
        for connector_id, ids in _by_connector(keys).items():
            wanted = sorted(set(ids))
            for carrier_id, sms_uid in self._by_carrier_id(conn, "messages", connector_id, wanted):
                found[(connector_id, carrier_id)] = (sms_uid, _ON_MESSAGE)
            left = [i for i in wanted if (connector_id, i) not in found]
            for carrier_id, sms_uid, seq in self._by_carrier_id(conn, "parts", connector_id, left):
                found.setdefault((connector_id, carrier_id), (sms_uid, seq))
        return found

    def _by_carrier_id(
        self, conn: Connection, table: str, connector_id: int, ids: Sequence[str]
    ) -> Iterator[Any]:
        """The rows of ``table`` ("messages" or "parts") with these carrier ids: IN lists on
        SQLite, one LATERAL probe per id on PostgreSQL (``_LATERAL_BY_CARRIER_ID``)."""
        if not ids:
            return
        if self.dialect == "postgresql":
            yield from self._run(
                conn, _LATERAL_BY_CARRIER_ID[table], (json_list(ids), connector_id)
            )
            return
        by_ids = _MESSAGES_BY_CARRIER_ID if table == "messages" else _PARTS_BY_CARRIER_ID
        for chunk in _chunks(ids):
            marks, values = in_list(chunk)
            yield from self._run(conn, by_ids.replace("{marks}", marks), (connector_id, *values))

    def _settle(
        self, conn: Connection, touched: dict[str, tuple[ReceiptEvent, bool]], now_ms: int,
        result: DispatchResult, claim: ReportClaim | None, decided: Sequence[_Decided] = (),
    ) -> _Taken:  # fmt: skip
        """Decide each touched message from all its segments' receipts.

        A message sent as one submit_sm is decided by the receipt just applied to it; the parts
        of one sent as several are read back, and it is final when every part is (counted from
        its part rows: a long text sent whole in message_payload is one part). Final reports
        of messages whose reports go over HTTP, to customers with a callback URL, are written
        claimed for this process's pusher when ``claim`` has a claimer (up to its limit).
        """
        uids = list(touched)
        states: dict[str, tuple[str, int, int | None]] = {}
        facts = {d.sms_uid: d.facts for d in decided}
        for chunk in _chunks(uids):
            marks, values = in_list(chunk)
            sql = _MESSAGE_STATES.replace("{marks}", marks)
            for uid, state, customer_id, smpp_account, *message in self._run(conn, sql, values):
                states[uid] = (state, customer_id, smpp_account)
                facts[uid] = tuple(message)
        part_states: dict[str, list[SmsState | None]] = defaultdict(list)
        longer = [uid for uid, (_, on_message) in touched.items() if not on_message]
        for chunk in _chunks(longer):
            marks, values = in_list(chunk)
            sql = _PART_STATS.replace("{marks}", marks)
            for uid, stat in self._run(conn, sql, values):
                part_states[uid].append(_stat_state(stat))
        finals: list[tuple[object, ...]] = []
        reports: list[NewReport] = []
        preclaimed: list[str] = []
        room = claim.limit if claim is not None and claim.claimer is not None else 0
        customer_room = dict(claim.customer_room) if claim is not None else {}
        #: The customers' callbacks, read once a final report could be claimed here.
        callbacks: dict[int, tuple[str, str, str | None]] = {}
        customers = {d.customer_id for d in decided} | {c for _, c, _ in states.values()}

        def report_final(
            uid: str, customer_id: int, smpp_account: int | None, outcome: SmsState,
            report_ms: int,
        ) -> NewReport:  # fmt: skip
            """The final report, written claimed for this process's pusher if there is room."""
            report = NewReport.final(
                sms_uid=uid, customer_id=customer_id, state=FINAL_MESSAGE_STATE[outcome],
                result_desc=outcome.name, report_ms=report_ms,
            )  # fmt: skip
            reports.append(report)
            if smpp_account is None and len(preclaimed) < room:
                if not callbacks and customers:
                    callbacks.update(self._callbacks(conn, customers))
                    customers.clear()
                if customer_id not in callbacks:
                    return report  # no callback URL: the pusher's claim holds it
                left = customer_room.get(customer_id, room)
                if left > 0:
                    customer_room[customer_id] = left - 1
                    preclaimed.append(uid)
            return report

        for d in decided:
            report_final(d.sms_uid, d.customer_id, d.smpp_account_id, d.outcome,
                         d.event.report_ms)  # fmt: skip
        for uid, (event, on_message) in touched.items():
            if uid not in states:
                continue  # deleted meanwhile (an operator's purge): nothing to decide
            state, customer_id, smpp_account = states[uid]
            if MessageState(state) not in _DECIDABLE_STATES:
                continue  # rule 4 of cloudsms.domain.dlr: a final state is never re-decided
            seen = [_stat_state(event.stat)] if on_message else part_states[uid]
            outcome = message_outcome(len(seen), seen)
            stat = event.stat if on_message else None
            err = event.err if on_message else None
            if outcome is not None:
                report = report_final(uid, customer_id, smpp_account, outcome, event.report_ms)
                finals.append(
                    (FINAL_MESSAGE_STATE[outcome].value, report.sms_state, report.result_desc,
                     event.report_ms, now_ms, stat, err, uid, state)
                )  # fmt: skip
            elif event.sms_state in INTERMEDIATE:
                self._run(conn, _INTERMEDIATE, (int(event.sms_state), now_ms, stat, err, uid))
                report = NewReport(
                    sms_uid=uid, customer_id=customer_id, sms_state=int(event.sms_state),
                    result_desc=event.sms_state.name, report_ms=event.report_ms,
                )  # fmt: skip
                if enqueue_report(conn, self.dialect, report, now_ms=now_ms):
                    result.reported.append(uid)
        self._run_rows(conn, _DECIDE, finals)
        if reports:
            preclaim = None
            if claim is not None and preclaimed:
                preclaim = Preclaim(
                    claimer=claim.claimer, lease_until_ms=now_ms + claim.lease_ms,
                    sms_uids=frozenset(preclaimed),
                )  # fmt: skip
            written = enqueue_reports(conn, self.dialect, reports, now_ms=now_ms, preclaim=preclaim)
            result.reported.extend(r.sms_uid for r in reports)
            if preclaim is not None and written is not None:
                by_uid = {r.sms_uid: r for r in reports}
                built = self._claimed_reports(conn, now_ms, written, by_uid, facts, callbacks)
                return _Taken(preclaimed, built)
        return _Taken(preclaimed, None)

    def _callbacks(
        self, conn: Connection, customer_ids: Collection[int]
    ) -> dict[int, tuple[str, str, str | None]]:
        """customer_id → (callback_url, auth_key, callback_ca_pem), for customers with a
        callback URL: the only ones whose reports a dispatch transaction claims (the others'
        are held by the pusher's own claim until a URL is set)."""
        found: dict[int, tuple[str, str, str | None]] = {}
        marks, values = in_list(sorted(customer_ids))
        for cid, url, key, ca in self._run(conn, _CALLBACKS.replace("{marks}", marks), values):
            if url:
                found[cid] = (url, key, ca)
        return found

    def _claimed_reports(
        self, conn: Connection, now_ms: int, written: Mapping[str, int],
        reports: Mapping[str, NewReport], facts: Mapping[str, tuple[Any, ...]],
        callbacks: Mapping[int, tuple[str, str, str | None]],
    ) -> list[DueReport]:  # fmt: skip
        """The reports written claimed (``written``: SMS_UID → outbox id), as the claim's
        read-back would give them, from what this transaction read: the message's facts, the
        customer's callback, a SERIAL each (``report_ops.take_serials``), oldest id first.

        Why (issue 14): reading them back joined the outbox, the messages and the customers
        again for rows this transaction had just read or written — 7 % of the worker's event
        loop under the side-by-side harness (py-spy, 2026-12-08).
        """
        order = sorted(written, key=written.__getitem__)
        per_customer = Counter(reports[uid].customer_id for uid in order)
        serials = {
            cid: iter(take_serials(conn, self.dialect, cid, n))
            for cid, n in sorted(per_customer.items())
        }
        built = []
        for uid in order:
            r = reports[uid]
            sender, country_code, dest, body, segments, fee, currency = facts[uid]
            url, key, ca = callbacks[r.customer_id]
            built.append(
                DueReport(
                    id=written[uid], sms_uid=uid, customer_id=r.customer_id,
                    sms_state=r.sms_state, result_desc=r.result_desc, report_ms=r.report_ms,
                    created_ms=now_ms, attempts=0, next_attempt_ms=now_ms,
                    serial=next(serials[r.customer_id]), callback_url=url, auth_key=key,
                    sender=sender, country_code=country_code, dest_msisdn=dest,
                    customer_body=body, segments=segments, fee_micros=fee, currency=currency,
                    callback_ca_pem=ca,
                )
            )  # fmt: skip
        return built

    # -- state changes ----------------------------------------------------------------------

    def _finish(
        self, conn: Connection, uid: str, final: MessageState, report_ms: int, now_ms: int,
        result: DispatchResult, *, detail: str | None = None,
        result_desc: str | None = None, refund: bool = False, connector_id: int | None = None,
        customer_id: int | None = None, claimer: int | None = None,
    ) -> None:  # fmt: skip
        """Move a message to a final state and enqueue its report, once.

        With ``claimer``: only if the message is still QUEUED under that worker's claim.
        """
        row = self._run(conn, _FINISH_READ, (uid,)).one_or_none()
        if row is None or MessageState(row.state) not in _FINISHABLE[final]:
            return
        if claimer is not None and row.claimed_by != claimer:
            return
        report = NewReport.final(
            sms_uid=uid, customer_id=customer_id or row.customer_id, state=final,
            result_desc=result_desc, report_ms=report_ms,
        )  # fmt: skip
        fee = row.fee_micros
        if refund and fee:
            self._run(conn, _REFUND, (fee, row.customer_id))
            fee = 0
        self._run(
            conn, _FINISH_BY[final],
            (final.value, report.sms_state, report.result_desc, report_ms, now_ms,
             clip_detail(detail), connector_id, fee, uid, row.state),
        )  # fmt: skip
        if enqueue_report(conn, self.dialect, report, now_ms=now_ms):
            result.reported.append(uid)

    def parts_of(self, sms_uid: str) -> list[dict[str, object]]:
        """The segments of a message as stored (for operators and tests)."""
        with self._connect(write=False) as conn:
            return parts_with_carrier_ids(conn, sms_uid)

    def unmatched_receipts(self, limit: int = 100) -> list[dict[str, object]]:
        with self._connect(write=False) as conn:
            rows = conn.execute(
                select(tables.receipts)
                .where(_r.sms_uid.is_(None))
                .order_by(_r.id.desc())
                .limit(limit)
            )
            return [dict(row._mapping) for row in rows]


def parts_with_carrier_ids(conn: Connection, sms_uid: str) -> list[dict[str, object]]:
    """A message's submitted segments as ``message_parts`` rows, by seq.

    A message sent as one submit_sm keeps its carrier id on its own row (schema 0014): it is
    given here as the part row it would have had, so operators and tests read one shape.
    """
    rows = conn.execute(select(tables.message_parts).where(_p.sms_uid == sms_uid).order_by(_p.seq))
    parts = [dict(row._mapping) for row in rows]
    if parts:
        return parts
    m = conn.execute(
        select(_m.connector_id, _m.carrier_id, _m.receipt_stat, _m.receipt_err,
               _m.submitted_ms, _m.final_ms).where(_m.sms_uid == sms_uid)
    ).one_or_none()  # fmt: skip
    if m is None or m.carrier_id is None:
        return []
    return [
        {
            "sms_uid": sms_uid, "seq": 1, "connector_id": m.connector_id,
            "carrier_id": m.carrier_id, "submit_status": 0, "receipt_stat": m.receipt_stat,
            "receipt_err": m.receipt_err, "submitted_ms": m.submitted_ms,
            "done_ms": m.final_ms if m.receipt_stat else None,
        }
    ]  # fmt: skip


def clip_detail(detail: str | None) -> str | None:
    """``detail`` cut to the column's width, marked with an ellipsis.

    Outcomes carry free text (a carrier's or a library's error message). PostgreSQL refuses a
    value over ``messages.detail``'s width, and with it the whole batch of outcomes and
    receipts, which the recorder would then retry for ever; SQLite would store it whole.
    """
    if detail is None or len(detail) <= tables.DETAIL_LENGTH:
        return detail
    return detail[: tables.DETAIL_LENGTH - 1] + "…"


def _stat_state(stat: str | None) -> SmsState | None:
    return STAT_TO_SMS_STATE.get(stat) if stat else None


def _receipt_from_row(
    connector_id: int, carrier_id: str, stat: str, err: str | None, raw: str | None,
    received_ms: int,
) -> ReceiptEvent:  # fmt: skip
    return ReceiptEvent(
        connector_id=connector_id,
        carrier_id=carrier_id,
        sms_state=_stat_state(stat) or SmsState.UNKNOWN,
        stat=stat,
        err=err,
        report_ms=received_ms,
        raw=raw,
    )


def _by_connector(keys: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    by_connector: dict[int, list[str]] = defaultdict(list)
    for connector_id, carrier_id in keys:
        by_connector[connector_id].append(carrier_id)
    return by_connector


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


__all__ = [
    "DispatchOps",
    "DispatchResult",
    "OutboundMessage",
    "PartResult",
    "ReceiptEvent",
    "SubmitOutcome",
]
