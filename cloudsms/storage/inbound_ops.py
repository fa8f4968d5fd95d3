"""Inbound messages (MO): ``InboundOps`` — keep, deduplicate and route them; their push outbox.

Strategy: :meth:`InboundOps.store_inbounds` is called with the carrier deliver_sm that are
messages and arrived together (the intake's group commit, ``workers.inbound``); their
deliver_sm_resp leave only after it returns (durable commit). In that one transaction, for each
in order (each sees those before it), it:

1. drops a redelivery: a whole message with the same ``dedup_key`` received within the window,
   or a part already held (unique on connector, addresses, concatenation and sequence);
2. keeps a part (``inbound_parts``: its raw bytes) until every part of its message is there,
   then joins and decodes them (``domain.inbound.assemble``) and deletes the parts;
3. routes the whole message (``domain.inbound.choose_route``: inbound numbers and keywords,
   reply matching on ``messages`` through ``ix_messages_dest``, the default customer) and
   inserts it into ``inbound_messages``, due for its push at once (or ``unrouted``), with its
   delivery channel: ``smpp`` when the customer has an enabled SMPP account taking MOs
   (``smpp_accounts.mo``; then ``storage.smpp_mo_ops`` claims it), else ``http``;
4. applies an opt-out keyword (STOP, START …, by the country policies the caller passes: the
   configuration in memory) to the customer's list, bumping ``config_version`` when it changes.

What a batch's MOs share is read once (``_Batch``: an inbound number's customers, the default
customer, who takes MOs over SMPP); the per-MO statements are plain SQL (``storage.plain_sql``).

``inbound_messages`` is also the outbox of SMS_PUSH_MO (``workers.mo_pusher``, for its ``http``
rows): the same claim, lease, retry and give-up rules as the report outbox
(``storage.report_ops``), one row per MO.
A claim leases rows for ``lease_ms``; a pusher that dies leaves them due again at the lease's
end (they are not recovered early by worker id, unlike reports).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloudsms.domain.inbound import (
    DueMo,
    InboundArrival,
    InboundNumber,
    InboundOutcome,
    InboundPart,
    InboundRecord,
    assemble,
    choose_route,
    dedup_key,
    first_word,
    number_key,
)
from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OptAction, opt_change
from cloudsms.domain.pipeline import ReportResult
from cloudsms.exceptions import NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of
from cloudsms.storage.report_ops import take_serials

# The intake's per-MO statements, plain SQL (``storage.plain_sql``: SQLAlchemy Core's statement
# building cost more than SQLite's work here, as on the dispatcher's path).
#: Whether any MO is due for an HTTP push (parameter: now), read before the claim's write
#: transaction (``ix_inbound_messages_due``); a superset of what the claim takes.
_ANY_MO_DUE = (
    "SELECT 1 FROM inbound_messages WHERE push_state = 'pending' AND next_attempt_ms <= ?"
    " AND channel = 'http' LIMIT 1"
)
_PART_GROUP = "connector_id = ? AND source = ? AND destination = ? AND concat_ref = ?"
_INSERT_PART = (
    "INSERT INTO inbound_parts (connector_id, source, destination, concat_ref, seq, data_coding,"
    " data, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id"
)
_HELD_PARTS = f"SELECT seq, data, data_coding FROM inbound_parts WHERE {_PART_GROUP}"
_DELETE_PARTS = f"DELETE FROM inbound_parts WHERE {_PART_GROUP}"
_MO_COLUMNS = (
    "mo_uid", "connector_id", "source", "destination", "text", "data_coding", "parts", "keyword",
    "dedup_key", "customer_id", "routed_by", "received_ms", "push_state", "next_attempt_ms",
    "attempts", "channel",
)  # fmt: skip
_INSERT_MO = (
    f"INSERT INTO inbound_messages ({', '.join(_MO_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_MO_COLUMNS))}) RETURNING id"
)

# The pusher's outcomes (``record_mo_results``): only pending rows change, so a late duplicate
# outcome never undoes a done push.
_MO_SETTLE = "UPDATE inbound_messages SET claimed_by = NULL, {}, attempts = attempts + ?"
_PENDING = " WHERE id = ? AND push_state = 'pending'"
_MO_DONE = _MO_SETTLE.format("push_state = 'done', done_ms = ?, last_error = NULL") + _PENDING
_MO_FAILED = _MO_SETTLE.format("push_state = 'failed', done_ms = ?, last_error = ?") + _PENDING
_MO_RETRY = _MO_SETTLE.format("next_attempt_ms = ?, last_error = ?") + _PENDING
_MO_LATER = _MO_SETTLE.format("next_attempt_ms = ?") + _PENDING


class InboundOps(StoreBase):
    """Named operations on inbound messages, inbound numbers and the MO push outbox."""

    # ---------------------------------------------------------------------------- receiving

    def store_inbound(
        self,
        connector_id: int,
        part: InboundPart,
        *,
        mo_uid: str,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = "",
        policies: Mapping[int, CountryPolicy] | None = None,
    ) -> InboundOutcome:
        """Keep one deliver_sm of an MO durably (see the module docstring); what became of it."""
        [outcome] = self.store_inbounds(
            [InboundArrival(connector_id, part, mo_uid)], now_ms=now_ms,
            dedup_window_ms=dedup_window_ms, reply_window_ms=reply_window_ms,
            default_customer=default_customer, policies=policies,
        )  # fmt: skip
        return outcome

    def store_inbounds(
        self,
        arrivals: Sequence[InboundArrival],
        *,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = "",
        policies: Mapping[int, CountryPolicy] | None = None,
    ) -> list[InboundOutcome]:
        """Keep a batch of MO deliver_sm in ONE durable transaction, in order; their outcomes.

        Each is handled as :meth:`store_inbound` would, seeing the ones before it (a redelivery
        in the same batch is a duplicate, a message's last part completes it). ``policies``
        (the country policies by calling code, from the configuration snapshot): opt-out
        keywords of stored MOs are applied to their customers' lists in this transaction, and
        the configuration version is bumped when a list changed; None: keywords not applied.
        """
        with self._connect(write=True) as conn:
            batch = _Batch(conn, now_ms, dedup_window_ms, reply_window_ms, default_customer)
            outcomes = [self._store_inbound(batch, a) for a in arrivals]
            if policies is not None:
                outcomes = [self._apply_opt(batch, o, policies) for o in outcomes]
            return outcomes

    def _apply_opt(
        self, batch: _Batch, outcome: InboundOutcome, policies: Mapping[int, CountryPolicy]
    ) -> InboundOutcome:
        """Apply a stored MO's STOP / START to its customer's list (docs/decisions.md, "Opt-out
        lists"); the outcome with ``opt`` set when it was a keyword."""
        mo = outcome.record
        if mo is None or mo.customer_id is None:
            return outcome
        change = opt_change(mo.source, mo.text, policies)
        if change is None:
            return outcome
        conn, o = batch.conn, t.opt_outs.c
        mine = and_(o.customer_id == mo.customer_id, o.number == change.number)
        listed = conn.scalar(select(o.id).where(mine)) is not None
        if listed == (change.action is OptAction.OPT_OUT):
            return replace(outcome, opt=change)  # STOP from a listed number: nothing changes
        if not batch.bumped:
            # Running servers reload their lists (the accept path's Intercept) within a second.
            # Bumped BEFORE the list is written, the order of every operator change
            # (``StoreBase._config_change``): on PostgreSQL the version row's lock then orders
            # this transaction and an operator's change of the same number, never a deadlock.
            conn.execute(
                update(t.config_version)
                .where(t.config_version.c.id == 1)
                .values(version=t.config_version.c.version + 1)
            )
            batch.bumped = True
        if change.action is OptAction.OPT_OUT:
            make = pg_insert if self.dialect == "postgresql" else sqlite_insert
            row = {"customer_id": mo.customer_id, "number": change.number, "via": "keyword",
                   "keyword": change.keyword, "created_ms": batch.now_ms}  # fmt: skip
            # Listed meanwhile (before the version lock): it keeps its first entry.
            conn.execute(make(t.opt_outs).values(**row).on_conflict_do_nothing())
        else:
            conn.execute(delete(t.opt_outs).where(mine))
        return replace(outcome, opt=change)

    def _store_inbound(self, batch: _Batch, arrival: InboundArrival) -> InboundOutcome:
        conn, now_ms = batch.conn, batch.now_ms
        connector_id, part, mo_uid = arrival.connector_id, arrival.part, arrival.mo_uid
        since = now_ms - batch.dedup_window_ms

        def seen(key: str) -> bool:
            found = self._run(
                conn,
                "SELECT id FROM inbound_messages WHERE dedup_key = ? AND received_ms >= ? LIMIT 1",
                (key, since),
            ).first()
            return found is not None

        def serialize(key: str) -> None:
            # PostgreSQL: two parts of one message stored at once would each miss the other
            # (neither committed yet) and wait forever; one lock per message key makes the second
            # wait for the first, then see its part. SQLite writers are serial already.
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(key[:15], 16)})

        parts = 1
        if part.concat is not None:
            key = dedup_key(connector_id, part, "")
            serialize(key)
            if seen(key):
                return InboundOutcome(status="duplicate")
            ref, total, seq = part.concat
            group = (connector_id, part.source, part.destination,
                     f"{part.concat_kind}:{ref}/{total}")  # fmt: skip
            kept = (*group, seq, part.data_coding, part.data, now_ms)
            added = self._run(conn, _INSERT_PART, kept).first()
            if added is None:
                return InboundOutcome(status="duplicate")
            held = self._run(conn, _HELD_PARTS, group).all()
            if len(held) < total:
                return InboundOutcome(status="waiting")
            self._run(conn, _DELETE_PARTS, group)
            coding = next(coding for seq, _, coding in held if seq == 1)
            body = assemble([(seq, bytes(data)) for seq, data, _ in held], coding)
            parts = total
        else:
            coding = part.data_coding
            body = assemble([(1, part.data)], coding)
            key = dedup_key(connector_id, part, body)
            serialize(key)
            if seen(key):
                return InboundOutcome(status="duplicate")
        keyword = first_word(body)
        by_number = batch.numbers(part.destination)
        reply = (
            self._replied_by(conn, part, now_ms - batch.reply_window_ms)
            if batch.reply_window_ms > 0 and not by_number
            else None
        )
        customer_id, routed_by = choose_route(keyword, by_number, reply, batch.default())
        row = {
            "mo_uid": mo_uid, "connector_id": connector_id, "source": part.source,
            "destination": part.destination, "text": body, "data_coding": coding,
            "parts": parts, "keyword": keyword, "dedup_key": key, "customer_id": customer_id,
            "routed_by": routed_by, "received_ms": now_ms,
            "push_state": "unrouted" if customer_id is None else "pending",
            "next_attempt_ms": now_ms, "attempts": 0,
            "channel": "smpp" if batch.over_smpp(customer_id) else "http",
        }  # fmt: skip
        new_id = self._run(conn, _INSERT_MO, tuple(row.values())).scalar_one()
        return InboundOutcome(status="stored", record=_record(dict(row, id=new_id)))

    def drop_stale_inbound_parts(self, older_than_ms: int) -> int:
        """Delete the parts of messages whose newest part arrived before ``older_than_ms``.

        A message's parts go together, only once none arrived within the window: deleting its
        oldest parts alone would leave the rest unable to complete. A part arriving after its
        group went starts a new group (its carrier resends the others, or it goes too). Run by
        the worker's periodic sweep (``workers.mo_parts``); no index needed, the table holds only
        incomplete messages.
        """
        p, q = t.inbound_parts.c, t.inbound_parts.alias("q").c
        newer = (
            select(q.id)
            .where(
                q.connector_id == p.connector_id,
                q.source == p.source,
                q.destination == p.destination,
                q.concat_ref == p.concat_ref,
                q.received_ms >= older_than_ms,
            )
            .exists()
        )
        with self._connect(write=True) as conn:
            gone = conn.execute(
                delete(t.inbound_parts).where(p.received_ms < older_than_ms, ~newer)
            )
            return max(gone.rowcount or 0, 0)

    @staticmethod
    def _replied_by(conn: Connection, part: InboundPart, since_ms: int) -> int | None:
        """The customer that last sent to the MO's source with its destination as sender."""
        source = number_key(part.source)
        if not source.isdigit():
            return None
        g = t.messages.c
        # The calling code is 1-3 digits: the national part is one of three suffixes.
        nationals = [source[n:] for n in (1, 2, 3) if len(source) > n]
        dest = number_key(part.destination)
        senders = {dest, "+" + dest, part.destination}
        found = conn.execute(
            select(g.customer_id, g.country_code, g.dest_msisdn)
            .where(
                g.dest_msisdn.in_(nationals),
                g.created_ms >= since_ms,
                g.sender.in_(senders),
            )
            .order_by(g.created_ms.desc())
            .limit(20)
        ).all()
        for r in found:
            if f"{r.country_code}{r.dest_msisdn}" == source:
                return int(r.customer_id)
        return None

    def customer_inbound(
        self, customer_id: int, since_mo_uid: str | None = None, limit: int = 100
    ) -> list[InboundRecord]:
        """MO_QUERY: the customer's inbound messages, oldest first, after ``since_mo_uid`` (one
        of its own; an unknown one reads from the start), at most ``limit``."""
        m = t.inbound_messages.c
        query = select(t.inbound_messages).where(m.customer_id == customer_id)
        if since_mo_uid is not None:
            after = (
                select(m.id)
                .where(m.mo_uid == since_mo_uid, m.customer_id == customer_id)
                .scalar_subquery()
            )
            query = query.where(m.id > func.coalesce(after, 0))
        with self._connect(write=False) as conn:
            return [_record(r._asdict()) for r in conn.execute(query.order_by(m.id).limit(limit))]

    # ------------------------------------------------------------------------------ pushing

    def claim_due_mo(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 120_000,
        exclude_customers: Collection[int] = (),
        claimer: int | None = None,
        hold_ms: int = 0,
    ) -> list[DueMo]:
        """Claim up to ``limit`` due MO pushes for ``lease_ms``, each with its SERIAL.

        Oldest first. An MO whose customer has neither ``mo_url`` nor ``callback_url`` is left
        in the outbox until ``hold_ms`` after it arrived (an operator may set one meanwhile);
        then it is returned, and the pusher gives it up (``no callback_url``).
        """
        with self._connect(write=False) as conn:  # most polls find nothing: no write lock then
            if self._run(conn, _ANY_MO_DUE, (now_ms,)).first() is None:
                return []
        m, c = t.inbound_messages.c, t.customers.c
        url = func.coalesce(c.mo_url, c.callback_url)
        query = (
            select(
                m.id,
                m.mo_uid,
                m.customer_id,
                m.source,
                m.destination,
                m.text,
                m.parts,
                m.keyword,
                m.received_ms,
                m.attempts,
                m.next_attempt_ms,
                c.auth_key,
                url.label("url"),
                c.callback_ca_pem,
            )
            .join(t.customers, c.id == m.customer_id)
            .where(
                m.push_state == "pending",
                m.channel == "http",  # "smpp" ones go out on SMPP sessions (smpp_mo_ops)
                m.next_attempt_ms <= now_ms,
                or_(url.is_not(None), m.received_ms <= now_ms - hold_ms),
            )
            .order_by(m.next_attempt_ms, m.id)
            .limit(limit)
        )
        if exclude_customers:
            query = query.where(m.customer_id.not_in(list(exclude_customers)))
        with self._connect(write=True, durable=False) as conn:
            rows = conn.execute(query).all()
            if not rows:
                return []
            conn.execute(
                update(t.inbound_messages)
                .where(m.id.in_([r.id for r in rows]))
                .values(next_attempt_ms=now_ms + lease_ms, claimed_by=claimer)
            )
            counts: dict[int, int] = {}
            for r in rows:
                counts[r.customer_id] = counts.get(r.customer_id, 0) + 1
            serials = {
                cid: iter(take_serials(conn, self.dialect, cid, n))
                for cid, n in sorted(counts.items())
            }
            return [
                DueMo(
                    id=r.id,
                    mo_uid=r.mo_uid,
                    customer_id=r.customer_id,
                    auth_key=r.auth_key,
                    serial=next(serials[r.customer_id]),
                    callback_url=r.url,
                    callback_ca_pem=r.callback_ca_pem,
                    source=r.source,
                    destination=r.destination,
                    text=r.text,
                    parts=r.parts,
                    keyword=r.keyword,
                    received_ms=r.received_ms,
                    created_ms=r.received_ms,
                    attempts=r.attempts,
                    next_attempt_ms=r.next_attempt_ms,
                )
                for r in rows
            ]

    def record_mo_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        """What became of claimed MO pushes (the pusher's ``ReportResult``), one transaction.

        ``defer`` moves every pending HTTP MO of a customer due earlier to that time (its
        callback is down; its SMPP MOs do not wait for it). Only pending rows change: a late
        duplicate outcome never undoes a done push.
        """
        m = t.inbound_messages.c
        with self._connect(write=True, durable=False) as conn:
            for r in results:
                attempted = int(r.attempted)
                if r.outcome == "done":
                    self._run(conn, _MO_DONE, (now_ms, attempted, r.id))
                elif r.outcome == "give_up":
                    self._run(conn, _MO_FAILED, (now_ms, r.error, attempted, r.id))
                elif r.outcome == "retry":
                    self._run(conn, _MO_RETRY, (r.next_attempt_ms, r.error[:1000], attempted, r.id))
                else:
                    self._run(conn, _MO_LATER, (r.next_attempt_ms, attempted, r.id))
            for customer_id, until in (defer or {}).items():
                conn.execute(
                    update(t.inbound_messages)
                    .where(
                        m.customer_id == customer_id,
                        m.push_state == "pending",
                        m.channel == "http",  # its callback is down, not its SMPP sessions
                        m.next_attempt_ms < until,
                        m.claimed_by.is_(None),
                    )
                    .values(next_attempt_ms=until)
                )

    # ----------------------------------------------------------------------------- operators

    def list_inbound_messages(
        self, customer: CustomerRef | None = None, *, limit: int = 100, unrouted: bool = False
    ) -> list[InboundRecord]:
        """The latest MOs, newest first: of one customer, or those routed to nobody."""
        m = t.inbound_messages.c
        query = select(t.inbound_messages).order_by(m.received_ms.desc(), m.id.desc())
        with self._connect(write=False) as conn:
            if customer is not None:
                query = query.where(m.customer_id == customer_id_of(conn, customer))
            if unrouted:
                query = query.where(m.customer_id.is_(None))
            return [_record(r._asdict()) for r in conn.execute(query.limit(limit))]

    def add_inbound_number(self, number: str, keyword: str, customer: CustomerRef) -> None:
        """Give ``number`` (compared as ``number_key``) to a customer, for ``keyword`` or all."""
        number, keyword = number_key(number), keyword.upper()
        what = f"number {number!r}" + (f" keyword {keyword!r}" if keyword else "")
        with self._config_change(f"{what} is already assigned") as conn:
            conn.execute(
                insert(t.inbound_numbers).values(
                    number=number,
                    keyword=keyword,
                    customer_id=customer_id_of(conn, customer),
                    created_ms=self.now_ms(),
                )
            )

    def list_inbound_numbers(self, customer: CustomerRef | None = None) -> list[InboundNumber]:
        n = t.inbound_numbers.c
        query = (
            select(t.inbound_numbers, t.customers.c.name)
            .join(t.customers, t.customers.c.id == n.customer_id)
            .order_by(n.number, n.keyword)
        )
        with self._config_read() as conn:
            if customer is not None:
                query = query.where(n.customer_id == customer_id_of(conn, customer))
            return [
                InboundNumber(r.id, r.number, r.keyword, r.customer_id, r.name, r.created_ms)
                for r in conn.execute(query)
            ]

    def remove_inbound_number(self, number: str, keyword: str) -> None:
        number, keyword = number_key(number), keyword.upper()
        n = t.inbound_numbers.c
        with self._config_change() as conn:
            gone = conn.execute(
                delete(t.inbound_numbers).where(n.number == number, n.keyword == keyword)
            )
            if gone.rowcount == 0:
                raise NotFound(
                    f"no inbound number {number!r}" + (f" keyword {keyword!r}" if keyword else "")
                )

    def set_mo_url(self, ref: CustomerRef, url: str | None) -> None:
        """Where the customer's MOs are pushed (None: its report callback_url); pending MOs
        waiting out a back-off become due at once."""
        with self._config_change() as conn:
            customer_id = customer_id_of(conn, ref)
            conn.execute(
                update(t.customers).where(t.customers.c.id == customer_id).values(mo_url=url)
            )
            m = t.inbound_messages.c
            conn.execute(
                update(t.inbound_messages)
                .where(
                    m.customer_id == customer_id,
                    m.push_state == "pending",
                    # SMPP claims carry no claimer: their lease must not be cut short here
                    m.channel == "http",
                    m.claimed_by.is_(None),
                )
                .values(next_attempt_ms=self.now_ms())
            )

    def get_mo_url(self, ref: CustomerRef) -> str | None:
        with self._config_read() as conn:
            customer_id = customer_id_of(conn, ref)
            url = conn.scalar(select(t.customers.c.mo_url).where(t.customers.c.id == customer_id))
            return str(url) if url is not None else None


class _Batch:
    """One transaction of ``store_inbounds``: its connection and what its MOs share, read once
    (an inbound number's customers, the default customer, who takes MOs over SMPP)."""

    def __init__(
        self,
        conn: Connection,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str,
    ) -> None:
        self.conn = conn
        self.now_ms = now_ms
        self.dedup_window_ms = dedup_window_ms
        self.reply_window_ms = reply_window_ms
        self.default_customer = default_customer
        #: The configuration version was bumped in this transaction (an opt-out list changed).
        self.bumped = False
        self._numbers: dict[str, dict[str, int]] = {}
        self._default: list[int | None] = []
        self._smpp: dict[int, bool] = {}

    def numbers(self, destination: str) -> dict[str, int]:
        """keyword ("" for any) → customer of an inbound number."""
        number = number_key(destination)
        found = self._numbers.get(number)
        if found is None:
            n = t.inbound_numbers.c
            rows = self.conn.execute(select(n.keyword, n.customer_id).where(n.number == number))
            found = self._numbers[number] = {r.keyword: r.customer_id for r in rows}
        return found

    def default(self) -> int | None:
        if not self._default:
            self._default.append(
                self.conn.scalar(
                    select(t.customers.c.id).where(t.customers.c.name == self.default_customer)
                )
                if self.default_customer
                else None
            )
        return self._default[0]

    def over_smpp(self, customer_id: int | None) -> bool:
        """Whether the customer has an enabled SMPP account taking MOs."""
        if customer_id is None:
            return False
        found = self._smpp.get(customer_id)
        if found is None:
            a = t.smpp_accounts.c
            found = self._smpp[customer_id] = self.conn.scalar(
                select(a.id)
                .where(a.customer_id == customer_id, a.enabled.is_(True), a.mo.is_(True))
                .limit(1)
            ) is not None  # fmt: skip
        return found


def _record(row: Mapping[str, Any]) -> InboundRecord:
    return InboundRecord(
        id=int(row["id"]),
        mo_uid=row["mo_uid"],
        connector_id=row["connector_id"],
        source=row["source"],
        destination=row["destination"],
        text=row["text"],
        data_coding=row["data_coding"],
        parts=row["parts"],
        keyword=row["keyword"],
        customer_id=row["customer_id"],
        routed_by=row["routed_by"],
        received_ms=row["received_ms"],
        push_state=row["push_state"],
        attempts=row.get("attempts") or 0,
        last_error=row.get("last_error") or "",
        channel=row.get("channel") or "http",
    )
