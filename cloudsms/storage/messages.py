"""The accept path and the message queries: ``MessageOps``, one mixin of the store.

Strategy for :meth:`MessageOps.accept_packets` (the hot path, called by the group-commit writer
with every packet that arrived while the previous transaction was committing):

1. One transaction for the whole batch, so one fsync covers many packets. On SQLite it opens with
   ``BEGIN IMMEDIATE``: the write lock is taken before anything is read, so the balance read in
   step 3 cannot go stale under another process (datasette ``_execute_writes`` does the same).
   On PostgreSQL the customer rows are read ``FOR NO KEY UPDATE``, ordered by id so two writers
   lock in the same order and cannot deadlock. Not ``FOR UPDATE``: that also conflicts with the
   ``KEY SHARE`` lock every insert of a row referencing the customer takes (its foreign key:
   the worker's report rows, its SERIAL counter), so each accept waited for the worker's open
   transaction to commit (issue 14: seen waiting on a row lock in 31 of 80 samples of
   ``pg_stat_activity`` under the harness). The debit below changes no key either.
2. Replays: the batch's packet keys are looked up with one query. A stored answer younger than
   the window is returned instead of writing anything for that packet; a second packet with the
   same key inside the batch replays the first. Age is measured between the two packets'
   ``created_ms`` (receipt times), so it does not depend on when the batch happens to commit.
3. Money: messages ``ACCEPTED`` with a fee are debited in input order from a running balance per
   customer that starts from the database value. The balance may reach ``-credit_limit_micros``;
   a message that would go below is stored ``REJECTED`` / ``LOCAL_REJECTED`` /
   ``insufficient_balance`` with fee 0 (SPEC §4: balance insufficient is a LOCAL_REJECTED cause;
   the ANSWER stays OK, the customer learns it from the report). Each customer then gets one
   ``UPDATE … SET balance_micros = balance_micros - :debit``: equal to writing the new balance
   while we hold the lock, and still right if some other writer forgets to lock.
4. All messages are inserted at once, by the fastest form measured per engine (``bench/
   store_accept.py``): on SQLite a prepared INSERT with ``executemany`` of tuples (about 2x
   SQLAlchemy Core dict inserts); on PostgreSQL ``COPY`` for batches of ``_COPY_MIN_ROWS`` rows
   or more (about 1.6x a pipelined ``executemany``, 5x a multi-row VALUES) and ``executemany``
   below that, where both cost one round trip.

Any database error rolls the whole batch back and is raised as :class:`StoreError` (``from`` the
cause); when the cause is the data itself (a constraint or a bad value) it is the subclass
:class:`BatchRejected`, which tells the writer that the other packets of the batch may still go
through alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, delete, func, select, text, update

from cloudsms.domain.codes import LOCAL_REJECTED
from cloudsms.domain.models import NewMessage, PacketOutcome, PacketWrite
from cloudsms.domain.pipeline import (
    LocalClaim,
    MessageRecord,
    NewReport,
    OutboundMessage,
    claim_at_acceptance,
)
from cloudsms.domain.replay_keys import legacy_digest_prefix
from cloudsms.domain.status import FINAL_STATES, MessageState, customer_state, sources_of
from cloudsms.exceptions import NotFound, StoreError
from cloudsms.storage import tables
from cloudsms.storage.base import DATABASE_ERRORS, BatchRejected, StoreBase, translate_error
from cloudsms.storage.plain_sql import in_list, run, run_many
from cloudsms.storage.report_enqueue import insert_fresh_reports

#: ``detail`` of a message turned LOCAL_REJECTED because the balance ran out.
INSUFFICIENT_BALANCE = "insufficient_balance"

#: States that count toward a customer's backlog (Queue_too_large): not yet handed to a carrier.
BACKLOG_STATES = (MessageState.ACCEPTED, MessageState.QUEUED)
if {s.value for s in BACKLOG_STATES} != {"accepted", "queued"}:  # tables.ACCEPTED_OR_QUEUED
    raise ValueError("the backlog states are not ix_messages_backlog's")

#: PostgreSQL: from this many rows on, COPY beats a pipelined executemany.
_COPY_MIN_ROWS = 16
#: Bound parameters per IN (...) list: far under SQLite's and PostgreSQL's limits.
_IN_CHUNK = 500

#: The columns the accept path writes, in ``_message_row`` order. Explicit, not derived from the
#: table: columns later stages own (attempts, connector, …) keep their database defaults.
_ACCEPT_COLUMNS: tuple[str, ...] = (
    "sms_uid",
    "customer_id",
    "serial",
    "country_code",
    "dest_msisdn",
    "route_name",
    "sender",
    "content",
    "encoding",
    "segments",
    "priority",
    "send_at_ms",
    "customer_body",
    "state",
    "sms_state",
    "result_desc",
    "detail",
    "fee_micros",
    "currency",
    "created_ms",
    "updated_ms",
    "final_ms",
    "attempts",
    "claimed_by",
    "smpp_account_id",
    "smpp_receipt",
    "expires_ms",
    "smpp_message_id",
)
_COLUMN_LIST = ", ".join(_ACCEPT_COLUMNS)


#: insert_messages: one prepared statement, executed with a list of tuples (plain_sql.run_many).
_INSERT_MESSAGES = (
    f"INSERT INTO messages ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(_ACCEPT_COLUMNS))})"
)
#: copy_messages (PostgreSQL, large batches).
_COPY_MESSAGES = f"COPY messages ({_COLUMN_LIST}) FROM STDIN"
#: insert_replays.
_INSERT_REPLAYS = (
    "INSERT INTO replays (packet_key, customer_id, answer, created_ms) VALUES (?, ?, ?, ?)"
)
_COPY_REPLAYS = "COPY replays (packet_key, customer_id, answer, created_ms) FROM STDIN"
#: The accept path's reads and deletes as plain SQL (``{marks}`` from ``plain_sql.in_list``):
#: SQLAlchemy Core built and compiled these for every batch.
_REPLAYS_BY_KEY = "SELECT packet_key, answer, created_ms FROM replays WHERE packet_key IN ({marks})"
_DELETE_REPLAYS = "DELETE FROM replays WHERE packet_key IN ({marks})"
#: Any replay row keyed by an older release (a bare digest: it starts with a hex digit, the keys
#: of ``cloudsms.domain.replay_keys`` with a letter past them): one probe of the key's index.
_ANY_OLDER_KEY = "SELECT 1 FROM replays WHERE packet_key < 'g' LIMIT 1"
#: How often the accept path looks again for keys of an older release.
_OLDER_KEYS_RECHECK_MS = 60_000
#: The older row of one packet, by its digest's prefix (parameters: prefix, prefix + 'g').
_OLDER_KEY = (
    "SELECT answer, created_ms FROM replays WHERE packet_key >= ? AND packet_key < ? LIMIT 1"
)
#: The paying customers, locked (PostgreSQL) in id order so two writers never deadlock.
_PAYERS = (
    "SELECT id, balance_micros, credit_limit_micros FROM customers WHERE id IN ({marks})"
    " ORDER BY id"
)
_FOR_UPDATE = {"postgresql": " FOR NO KEY UPDATE", "sqlite": ""}
#: debit_customer: executed with (debit, customer_id) pairs, one per paying customer.
_DEBIT = "UPDATE customers SET balance_micros = balance_micros - ? WHERE id = ?"

_m = tables.messages.c


class MessageOps(StoreBase):
    """Named operations on messages, replays and balances. Mixed into ``store.Store``."""

    #: Whether ``replays`` may hold keys of an older release, and when that was looked up.
    _older_keys = False
    _older_keys_at_ms = 0

    # ----------------------------------------------------------------------------- accept path

    def accept_packets(
        self,
        writes: Sequence[PacketWrite],
        *,
        replay_window_ms: int,
        claim: LocalClaim | None = None,
    ) -> list[PacketOutcome]:
        """Durably store a batch of packets in ONE transaction and say what happened to each.

        With ``claim``, up to ``claim.limit`` messages accepted and due now are written QUEUED
        under ``claim.claimer`` and returned in their outcome's ``claimed`` (see
        :class:`~cloudsms.domain.pipeline.LocalClaim`). Returns one :class:`PacketOutcome` per
        write, in input order. Raises
        :class:`StoreError` (nothing of the batch written) if the database fails.

        Example::

            outcomes = store.accept_packets([write1, write2], replay_window_ms=86_400_000)
            if outcomes[0].replayed:
                ...  # a blind client retry: outcomes[0].answer is the original answer
        """
        if not writes:
            return []
        try:
            with self._write_transaction() as conn:
                return self._accept_in_transaction(conn, writes, replay_window_ms, claim)
        except StoreError:
            raise
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "could not store the batch") from exc

    def _accept_in_transaction(
        self, conn: Connection, writes: Sequence[PacketWrite], replay_window_ms: int,
        claim: LocalClaim | None,
    ) -> list[PacketOutcome]:  # fmt: skip
        outcomes: list[PacketOutcome | None] = [None] * len(writes)

        # 1. Replays: one lookup for the whole batch.
        keys = {w.packet_key for w in writes if w.packet_key is not None}
        stored: dict[str, tuple[bytes, int]] = {}
        for chunk in _chunks(sorted(keys)):
            marks, values = in_list(chunk)
            rows = run(conn, self.dialect, _REPLAYS_BY_KEY.replace("{marks}", marks), values)
            for key, answer, created_ms in rows:
                stored[key] = (bytes(answer), created_ms)
        if keys and self._older_replay_keys(conn):
            for key in keys - stored.keys():
                prefix = legacy_digest_prefix(key)
                row = run(conn, self.dialect, _OLDER_KEY, (prefix, prefix + "g")).first()
                if row is not None:
                    stored[key] = (bytes(row[0]), row[1])

        answers: dict[str, bytes] = {}  # key → answer to replay, for keys settled in this batch
        stale: list[str] = []  # stored rows past the window, replaced by this batch
        fresh: list[PacketWrite] = []  # writes whose messages are written
        fresh_index: list[int] = []
        for i, w in enumerate(writes):
            key = w.packet_key
            if key is not None:
                if key in answers:
                    outcomes[i] = PacketOutcome(answer=answers[key], replayed=True)
                    continue
                hit = stored.get(key)
                if hit is not None:
                    answer, created_ms = hit
                    if w.created_ms - created_ms < replay_window_ms:
                        answers[key] = answer
                        outcomes[i] = PacketOutcome(answer=answer, replayed=True)
                        continue
                    stale.append(key)
                answers[key] = w.answer
            fresh.append(w)
            fresh_index.append(i)

        # 2. Money: lock the customers that pay, debit in order from a running balance.
        payers = sorted(
            {
                m.customer_id
                for w in fresh
                for m in w.messages
                if m.state is MessageState.ACCEPTED and m.fee_micros > 0
            }
        )
        floor: dict[int, int] = {}
        balance: dict[int, int] = {}
        for chunk in _chunks(payers):
            marks, values = in_list(chunk)
            sql = _PAYERS.replace("{marks}", marks) + _FOR_UPDATE[self.dialect]
            rows = run(conn, self.dialect, sql, values)
            for cid, bal, limit in rows:
                balance[cid] = bal
                floor[cid] = -limit
        missing = [cid for cid in payers if cid not in balance]
        if missing:
            raise BatchRejected(f"unknown customer(s) {missing}: batch refused")
        start = dict(balance)

        rows_out: list[tuple[Any, ...]] = []
        local_rejects: list[NewReport] = []
        room = claim.limit if claim is not None else 0
        for w, i in zip(fresh, fresh_index, strict=True):
            rejected: list[str] = []
            claimed: list[OutboundMessage] = []
            for m in w.messages:
                if m.state is MessageState.ACCEPTED and m.fee_micros > 0:
                    cid = m.customer_id
                    after = balance[cid] - m.fee_micros
                    if after < floor[cid]:
                        m = _reject_for_balance(m)
                        rejected.append(m.sms_uid)
                    else:
                        balance[cid] = after
                if m.state is MessageState.REJECTED:
                    local_rejects.append(_local_reject_report(m))
                claimer = None
                if room > 0 and claim_at_acceptance(m.state, m.send_at_ms, m.created_ms):
                    assert claim is not None
                    claimer, room = claim.claimer, room - 1
                    claimed.append(outbound_of(m))
                rows_out.append(_message_row(m, claimer))
            outcomes[i] = PacketOutcome(
                answer=w.answer, replayed=False, balance_rejected=tuple(rejected),
                claimed=tuple(claimed),
            )  # fmt: skip

        debits = [(start[cid] - balance[cid], cid) for cid in payers if balance[cid] != start[cid]]
        run_many(conn, self.dialect, _DEBIT, debits)

        # 3. Messages, their LOCAL_REJECTED reports (SPEC §4: pushed though never sent) and
        # replay rows. Reports cost nothing when every recipient was accepted.
        self._insert_messages(conn, rows_out)
        insert_fresh_reports(conn, self.dialect, local_rejects)
        for chunk in _chunks(stale):
            marks, values = in_list(chunk)
            run(conn, self.dialect, _DELETE_REPLAYS.replace("{marks}", marks), values)
        replay_rows = [
            (w.packet_key, w.customer_id, w.answer, w.created_ms)
            for w in fresh
            if w.packet_key is not None
        ]
        self._insert_rows(conn, _COPY_REPLAYS, _INSERT_REPLAYS, replay_rows)

        return [o for o in outcomes if o is not None]

    def _older_replay_keys(self, conn: Connection) -> bool:
        """Whether ``replays`` may hold rows keyed by an older release (a bare digest).

        Why: the key's form changed (``cloudsms.domain.replay_keys``); a blind retry of a packet
        answered before the upgrade must still find its answer. Looked up (one probe of the
        key's index) at most once a minute, and after this store's purges: once the purge — of
        whichever process — has removed the older rows, the extra lookups stop.
        """
        now = self.now_ms()
        if now - self._older_keys_at_ms >= _OLDER_KEYS_RECHECK_MS:
            self._older_keys = run(conn, self.dialect, _ANY_OLDER_KEY, ()).first() is not None
            self._older_keys_at_ms = now
        return self._older_keys

    def _insert_messages(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """insert_messages: the fastest bulk form for this engine (see the module docstring)."""
        self._insert_rows(conn, _COPY_MESSAGES, _INSERT_MESSAGES, rows)

    def _insert_rows(
        self, conn: Connection, copy_sql: str, insert_sql: str, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """``rows`` by ``COPY`` on PostgreSQL for a batch of ``_COPY_MIN_ROWS`` or more (one
        statement for the server to run, where ``executemany`` is one per row), else by
        ``executemany`` of ``insert_sql``."""
        if not rows:
            return
        if self.dialect == "postgresql" and len(rows) >= _COPY_MIN_ROWS:
            raw = conn.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        run_many(conn, self.dialect, insert_sql, rows)

    def purge_replays(self, older_than_ms: int) -> int:
        """Delete replay answers created before the epoch time ``older_than_ms``; return how many.

        ``older_than_ms`` is a cutoff timestamp, not an age: a janitor calls
        ``store.purge_replays(store.now_ms() - replay_window_ms)``.
        """
        stmt = delete(tables.replays).where(tables.replays.c.created_ms < older_than_ms)
        with self._connect(write=True) as conn:
            purged = conn.execute(stmt).rowcount
        self._older_keys_at_ms = 0  # looked up again at the next accept
        return purged

    # --------------------------------------------------------------------------------- queries

    def get_message(self, sms_uid: str) -> MessageRecord | None:
        with self._connect(write=False) as conn:
            row = conn.execute(select(tables.messages).where(_m.sms_uid == sms_uid)).first()
        return None if row is None else MessageRecord.from_row(row._mapping)

    def count_messages(
        self, *, customer_id: int | None = None, state: MessageState | None = None
    ) -> int:
        stmt = _filtered(select(func.count()).select_from(tables.messages), customer_id, state)
        with self._connect(write=False) as conn:
            return int(conn.execute(stmt).scalar_one())

    def list_messages(
        self,
        *,
        customer_id: int | None = None,
        state: MessageState | None = None,
        limit: int = 100,
    ) -> list[MessageRecord]:
        """Messages newest first (by creation time, then SMS_UID, which is time-ordered)."""
        stmt = (
            _filtered(select(tables.messages), customer_id, state)
            .order_by(_m.created_ms.desc(), _m.sms_uid.desc())
            .limit(limit)
        )
        with self._connect(write=False) as conn:
            return [MessageRecord.from_row(r._mapping) for r in conn.execute(stmt)]

    def backlog_by_customer(self) -> dict[int, int]:
        """customer_id → messages not yet handed to a carrier (ACCEPTED or QUEUED).

        Read every second by each API process (``api.backlog``): counted from
        ``ix_messages_backlog`` alone, whose condition is written as the index declares it
        (``tables.ACCEPTED_OR_QUEUED``; SQLAlchemy's ``in_`` binds parameters, and SQLite then
        read every message ever stored: 480 ms a second at 1.5 M messages, 2026-12-07).
        """
        stmt = (
            select(_m.customer_id, func.count())
            .where(text(tables.ACCEPTED_OR_QUEUED))
            .group_by(_m.customer_id)
        )
        with self._connect(write=False) as conn:
            return {cid: int(n) for cid, n in conn.execute(stmt)}

    def customer_balance(self, customer_id: int) -> int:
        """The balance in micro-units; :class:`NotFound` if there is no such customer."""
        stmt = select(tables.customers.c.balance_micros).where(tables.customers.c.id == customer_id)
        with self._connect(write=False) as conn:
            value = conn.execute(stmt).scalar_one_or_none()
        if value is None:
            raise NotFound(f"no customer {customer_id}")
        return int(value)

    # ------------------------------------------------------------------------------ transitions

    def transition(
        self,
        sms_uids: Sequence[str],
        target: MessageState,
        *,
        expected: MessageState | None = None,
        result_desc: str | None = None,
        detail: str | None = None,
        sms_state: int | None = None,
    ) -> int:
        """Move messages to ``target`` where ``status.TRANSITIONS`` allows it; return how many.

        Only messages whose current state may go to ``target`` (and equals ``expected`` when
        given) change, in one guarded UPDATE per chunk, so a concurrent change (a receipt racing
        the dispatcher) is never overwritten. Messages in other states are left alone and not
        counted. Asking for a move the table never allows raises ValueError (a caller bug).
        ``result_desc``, ``detail`` and ``sms_state`` are set too when given.

        Example::

            claimed = store.transition(uids, MessageState.QUEUED, expected=MessageState.ACCEPTED)
        """
        sources = sources_of(target, among=None if expected is None else [expected])
        values: dict[str, Any] = {"state": target.value, "updated_ms": self.now_ms()}
        if result_desc is not None:
            values["result_desc"] = result_desc
        if detail is not None:
            values["detail"] = detail
        if sms_state is not None:
            values["sms_state"] = sms_state
        changed = 0
        with self._connect(write=True) as conn:
            for chunk in _chunks(list(dict.fromkeys(sms_uids))):
                stmt = (
                    update(tables.messages)
                    .where(_m.sms_uid.in_(chunk), _m.state.in_([s.value for s in sources]))
                    .values(**values)
                )
                changed += conn.execute(stmt).rowcount
        return changed

    # ---------------------------------------------------------------------------------- helpers


def _filtered(stmt: Any, customer_id: int | None, state: MessageState | None) -> Any:
    if customer_id is not None:
        stmt = stmt.where(_m.customer_id == customer_id)
    if state is not None:
        stmt = stmt.where(_m.state == state.value)
    return stmt


def _reject_for_balance(m: NewMessage) -> NewMessage:
    return dataclasses.replace(
        m,
        state=MessageState.REJECTED,
        result_desc=LOCAL_REJECTED,
        detail=INSUFFICIENT_BALANCE,
        fee_micros=0,
    )


def _local_reject_report(m: NewMessage) -> NewReport:
    """The report of a recipient rejected at acceptance: SMS_STATE 8 / LOCAL_REJECTED."""
    return NewReport.final(
        sms_uid=m.sms_uid,
        customer_id=m.customer_id,
        state=m.state,
        result_desc=m.result_desc,
        report_ms=m.created_ms,
    )


def outbound_of(m: NewMessage) -> OutboundMessage:
    """The message as the dispatcher takes it when claimed at acceptance (its first attempt)."""
    return OutboundMessage(
        m.sms_uid, m.customer_id, m.country_code, m.dest_msisdn, m.route_name, m.sender,
        m.content, m.encoding, m.segments, m.priority, 1, m.fee_micros, m.expires_ms,
    )  # fmt: skip


def _message_row(m: NewMessage, claimer: int | None = None) -> tuple[Any, ...]:
    """A NewMessage as a tuple in ``_ACCEPT_COLUMNS`` order (updated = created).

    A message final at acceptance (LOCAL_REJECTED) is stored with the SMS_STATE and time of the
    report enqueued with it, so DR_QUERY reads what the push says; the others have none yet.
    With ``claimer`` it is claimed at acceptance: QUEUED, first attempt, under that worker.
    """
    final = m.state in FINAL_STATES
    state = MessageState.QUEUED if claimer is not None else m.state
    return (
        m.sms_uid,
        m.customer_id,
        m.serial,
        m.country_code,
        m.dest_msisdn,
        m.route_name,
        m.sender,
        m.content,
        m.encoding,
        m.segments,
        m.priority,
        m.send_at_ms,
        m.customer_body,
        state.value,
        int(customer_state(m.state, None, m.result_desc)[0]) if final else None,
        m.result_desc,
        m.detail,
        m.fee_micros,
        m.currency,
        m.created_ms,
        m.created_ms,
        m.created_ms if final else None,
        0 if claimer is None else 1,
        claimer,
        m.smpp_account_id,
        m.smpp_receipt,
        m.expires_ms,
        m.smpp_message_id,
    )


def _chunks(items: Sequence[Any] | Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == _IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch
