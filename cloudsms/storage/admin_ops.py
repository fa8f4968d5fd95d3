"""Operations for the admin API, the console and the customer portal: ``AdminOps``.

Four groups of named operations:

* **admin tokens** — only the SHA-256 of a token is stored (``admin_tokens.token_sha256``); the
  token itself is shown once, when created, and cannot be read back;
* **audit log** — who changed what (``audit_log``), written after each operator change;
* **message search and lifecycle** — the operator's (and the customer's) view of ``messages``,
  ``message_parts``, ``receipts``, ``report_outbox`` and ``report_attempts``;
* **statistics** — counts over time for the dashboard and the portal, grouped by state, country,
  connector or customer, in time buckets computed in SQL (``created_ms // bucket``: integer
  division on both engines) so a day of traffic is one indexed scan, not rows in Python.

Reads never bump ``config_version``. The one configuration change here, suspending a route,
bumps it like every other (``config_ops`` explains why).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy import String, cast, func, insert, or_, select, text, update

from cloudsms.domain.pipeline import MessageRecord
from cloudsms.domain.status import FINAL_STATES, MessageState
from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import BatchRejected, StoreBase
from cloudsms.storage.dispatch_ops import parts_with_carrier_ids

Role = Literal["admin", "readonly"]
ROLES: tuple[Role, ...] = ("admin", "readonly")
SeriesKey = Literal["state", "country", "connector", "customer"]
SERIES_KEYS: tuple[SeriesKey, ...] = ("state", "country", "connector", "customer")

#: Most rows one search returns (the console pages with ``before``).
MAX_SEARCH = 500
#: Most buckets one series may span (a guard against a one-second bucket over a year).
MAX_BUCKETS = 2_000
#: ``last_used_ms`` is written at most this often per token (a write per request is waste).
TOUCH_EVERY_MS = 60_000

_m = t.messages.c


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminToken:
    id: int
    name: str
    role: Role
    enabled: bool
    created_ms: int
    last_used_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    target: str | None
    #: The change's arguments (secrets masked by the caller), decoded from JSON.
    detail: dict[str, Any] | None
    created_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageQuery:
    """A message search; every field set narrows it. Times are epoch ms, ``until`` exclusive."""

    sms_uid: str | None = None
    #: National number (DEST_MSISDN) or the full number with its calling code.
    number: str | None = None
    customer_id: int | None = None
    state: MessageState | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    #: Page: messages older than this SMS_UID (SMS_UIDs are time-ordered).
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundMessage:
    record: MessageRecord
    customer: str
    connector: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lifecycle:
    """Everything that happened to one message, for its console page."""

    message: FoundMessage
    #: message_parts rows (segment, connector, carrier id, submit status, receipt), by seq.
    parts: list[dict[str, Any]] = field(default_factory=list)
    #: receipts rows matched to this message, oldest first.
    receipts: list[dict[str, Any]] = field(default_factory=list)
    #: report_outbox rows (one per reported state), oldest first.
    reports: list[dict[str, Any]] = field(default_factory=list)
    #: report_attempts rows (every push and the customer's answer), oldest first.
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """The dashboard's headline numbers, over the last ``window_ms``."""

    now_ms: int
    window_ms: int
    accepted: int
    #: Messages reaching a final state in the window, and how many of them were delivered.
    finished: int
    delivered: int
    #: Messages not yet handed to a carrier (ACCEPTED or QUEUED), platform-wide.
    backlog: int
    #: Submitted messages waiting for a receipt, by connector name.
    awaiting_receipt: dict[str, int]
    by_state: dict[str, int]

    @property
    def throughput(self) -> float:
        """Accepted messages per second over the window."""
        return self.accepted / (self.window_ms / 1000) if self.window_ms else 0.0

    @property
    def delivery_rate(self) -> float | None:
        """Delivered share of the messages that finished in the window (None: none finished)."""
        return self.delivered / self.finished if self.finished else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """Counts per time bucket and key: ``points[key][i]`` is the count in ``buckets[i]``."""

    by: SeriesKey
    bucket_ms: int
    buckets: list[int]
    points: dict[str, list[int]]


class AdminOps(StoreBase):
    """Named operations behind the admin API, the console and the portal."""

    # -- admin tokens -----------------------------------------------------------------------

    def create_admin_token(self, name: str, token_sha256: str, role: Role) -> AdminToken:
        now = self.now_ms()
        try:
            with self._connect(write=True) as conn:
                token_id = conn.execute(
                    insert(t.admin_tokens)
                    .values(
                        name=name,
                        token_sha256=token_sha256,
                        role=role,
                        enabled=True,
                        created_ms=now,
                    )
                    .returning(t.admin_tokens.c.id)
                ).scalar_one()
        except BatchRejected as exc:  # the unique name (or, astronomically, digest) is taken
            raise Conflict(f"an admin token named {name!r} already exists") from exc
        return AdminToken(
            id=token_id, name=name, role=role, enabled=True, created_ms=now, last_used_ms=None
        )

    def list_admin_tokens(self) -> list[AdminToken]:
        with self._connect(write=False) as conn:
            rows = conn.execute(select(t.admin_tokens).order_by(t.admin_tokens.c.name))
            return [_token(r._mapping) for r in rows]

    def revoke_admin_token(self, name: str) -> None:
        """Disable a token: every request and console session using it fails from now on."""
        with self._connect(write=True) as conn:
            done = conn.execute(
                update(t.admin_tokens).where(t.admin_tokens.c.name == name).values(enabled=False)
            )
            if done.rowcount == 0:
                raise NotFound(f"no admin token {name!r}")

    def admin_token_by_digest(self, token_sha256: str) -> AdminToken | None:
        """The enabled token with this digest, or None."""
        c = t.admin_tokens.c
        with self._connect(write=False) as conn:
            row = conn.execute(
                select(t.admin_tokens).where(c.token_sha256 == token_sha256, c.enabled.is_(True))
            ).first()
        return None if row is None else _token(row._mapping)

    def admin_token_by_id(self, token_id: int) -> AdminToken | None:
        with self._connect(write=False) as conn:
            row = conn.execute(
                select(t.admin_tokens).where(t.admin_tokens.c.id == token_id)
            ).first()
        return None if row is None else _token(row._mapping)

    def touch_admin_token(self, token_id: int, now_ms: int) -> None:
        """Record use (at most every ``TOUCH_EVERY_MS``, so most requests write nothing)."""
        c = t.admin_tokens.c
        with self._connect(write=True) as conn:
            conn.execute(
                update(t.admin_tokens)
                .where(
                    c.id == token_id,
                    or_(c.last_used_ms.is_(None), c.last_used_ms < now_ms - TOUCH_EVERY_MS),
                )
                .values(last_used_ms=now_ms)
            )

    # -- audit log --------------------------------------------------------------------------

    def record_audit(
        self, actor: str, action: str, target: str | None, detail: dict[str, Any] | None
    ) -> int:
        text = None if detail is None else orjson.dumps(detail, default=str).decode()
        with self._connect(write=True) as conn:
            return int(
                conn.execute(
                    insert(t.audit_log)
                    .values(
                        actor=actor[:64],
                        action=action[:64],
                        target=None if target is None else target[:255],
                        detail=text,
                        created_ms=self.now_ms(),
                    )
                    .returning(t.audit_log.c.id)
                ).scalar_one()
            )

    def list_audit(
        self,
        *,
        limit: int = 100,
        before_id: int | None = None,
        actor: str | None = None,
        target: str | None = None,
    ) -> list[AuditEntry]:
        """Newest first."""
        a = t.audit_log.c
        query = select(t.audit_log).order_by(a.id.desc()).limit(min(limit, MAX_SEARCH))
        if before_id is not None:
            query = query.where(a.id < before_id)
        if actor is not None:
            query = query.where(a.actor == actor)
        if target is not None:
            query = query.where(a.target == target)
        with self._connect(write=False) as conn:
            return [
                AuditEntry(
                    id=r.id,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=None if r.detail is None else orjson.loads(r.detail),
                    created_ms=r.created_ms,
                )
                for r in conn.execute(query)
            ]

    # -- routes -----------------------------------------------------------------------------

    def set_route_enabled(self, name: str, enabled: bool) -> None:
        """Suspend (False) or resume a route; running servers see it within a second."""
        with self._connect(write=True) as conn:
            _bump(conn)
            done = conn.execute(
                update(t.routes).where(t.routes.c.name == name).values(enabled=enabled)
            )
            if done.rowcount == 0:
                raise NotFound(f"no route {name!r}")

    def route_states(self) -> dict[str, bool]:
        """Route name → enabled (``list_routes`` predates suspension and does not say)."""
        with self._connect(write=False) as conn:
            return {r.name: bool(r.enabled) for r in conn.execute(select(t.routes))}

    # -- customers (portal) -----------------------------------------------------------------

    def customer_id_for_key(self, auth_key: str) -> int | None:
        """The enabled customer holding this AUTH_KEY, or None (portal login)."""
        c = t.customers.c
        with self._connect(write=False) as conn:
            found = conn.scalar(select(c.id).where(c.auth_key == auth_key, c.enabled.is_(True)))
        return None if found is None else int(found)

    def customer_key_and_state(self, customer_id: int) -> tuple[str, bool] | None:
        """(AUTH_KEY, enabled) of a customer: portal sessions end when either changes."""
        c = t.customers.c
        with self._connect(write=False) as conn:
            row = conn.execute(select(c.auth_key, c.enabled).where(c.id == customer_id)).first()
        return None if row is None else (str(row.auth_key), bool(row.enabled))

    # -- message search and lifecycle -------------------------------------------------------

    def search_messages(self, q: MessageQuery) -> list[FoundMessage]:
        """Messages matching ``q``, newest first, at most ``q.limit`` (≤ ``MAX_SEARCH``).

        Ordered by SMS_UID alone (its first 9 characters are the acceptance millisecond, so
        this is newest first): the page key ``before`` is then the sort key itself, so paging
        never skips or repeats a row whose ``created_ms`` disagrees with its SMS_UID by a
        millisecond, and the unfiltered newest page is read backwards off the primary key
        instead of sorting the whole table.
        """
        query = select(t.messages, t.customers.c.name.label("customer_name")).join(
            t.customers, t.customers.c.id == _m.customer_id
        )
        if q.sms_uid:
            query = query.where(_m.sms_uid == q.sms_uid.strip().upper())
        if q.number:
            digits = q.number.strip().removeprefix("+")
            query = query.where(
                or_(
                    _m.dest_msisdn == digits,
                    cast(_m.country_code, String) + _m.dest_msisdn == digits,
                )
            )
        if q.customer_id is not None:
            query = query.where(_m.customer_id == q.customer_id)
        if q.state is not None:
            query = query.where(_m.state == q.state.value)
        if q.since_ms is not None:
            query = query.where(_m.created_ms >= q.since_ms)
        if q.until_ms is not None:
            query = query.where(_m.created_ms < q.until_ms)
        if q.before:
            query = query.where(_m.sms_uid < q.before.strip().upper())
        query = query.order_by(_m.sms_uid.desc()).limit(max(1, min(q.limit, MAX_SEARCH)))
        with self._connect(write=False) as conn:
            rows = conn.execute(query).all()
            names = _connector_names(conn)
        return [_found(r._mapping, names) for r in rows]

    def message_lifecycle(self, sms_uid: str, customer_id: int | None = None) -> Lifecycle:
        """One message and all that happened to it; NotFound (also for another customer's)."""
        found = self.search_messages(MessageQuery(sms_uid=sms_uid, customer_id=customer_id))
        if not found:
            raise NotFound(f"no message {sms_uid!r}")
        uid = found[0].record.sms_uid
        r, o, a = t.receipts.c, t.report_outbox.c, t.report_attempts.c
        with self._connect(write=False) as conn:
            names = _connector_names(conn)
            parts = parts_with_carrier_ids(conn, uid)
            receipts = _dicts(conn.execute(select(t.receipts).where(r.sms_uid == uid)))
            reports = _dicts(conn.execute(select(t.report_outbox).where(o.sms_uid == uid)))
            attempts = _dicts(conn.execute(select(t.report_attempts).where(a.sms_uid == uid)))
        for row in (*parts, *receipts):
            row["connector"] = names.get(int(row["connector_id"]))
        return Lifecycle(
            message=found[0],
            parts=sorted(parts, key=lambda x: x["seq"]),
            receipts=sorted(
                [*receipts, *_receipts_on_parts(parts, receipts)],
                key=lambda x: (x["received_ms"] or 0, x["id"] or 0),
            ),
            reports=sorted(reports, key=lambda x: x["id"]),
            attempts=sorted(
                [*attempts, *_accepted_pushes(reports)],
                key=lambda x: (x["attempted_ms"], x["id"] or 0),
            ),
        )

    def customer_reports(self, customer_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """A customer's newest reports (outbox rows) with the message's number."""
        o = t.report_outbox.c
        query = (
            select(t.report_outbox, _m.country_code, _m.dest_msisdn)
            .join(t.messages, _m.sms_uid == o.sms_uid)
            .where(o.customer_id == customer_id)
            .order_by(o.id.desc())
            .limit(max(1, min(limit, MAX_SEARCH)))
        )
        with self._connect(write=False) as conn:
            return _dicts(conn.execute(query))

    # -- statistics -------------------------------------------------------------------------

    def summary(
        self,
        *,
        window_ms: int = 60_000,
        final_window_ms: int = 3_600_000,
        now_ms: int | None = None,
    ) -> Summary:
        """Headline numbers: throughput over ``window_ms``, delivery over ``final_window_ms``."""
        now = self.now_ms() if now_ms is None else now_ms
        final = [s.value for s in FINAL_STATES]
        with self._connect(write=False) as conn:
            accepted = conn.scalar(
                select(func.count()).select_from(t.messages).where(_m.created_ms >= now - window_ms)
            )
            finished, delivered = conn.execute(
                select(
                    func.count(),
                    func.count().filter(_m.state == MessageState.DELIVERED.value),
                ).where(_m.state.in_(final), _m.updated_ms >= now - final_window_ms)
            ).one()
            by_state = {
                str(state): int(n)
                for state, n in conn.execute(
                    select(_m.state, func.count())
                    .where(_m.created_ms >= now - final_window_ms)
                    .group_by(_m.state)
                )
            }
            # The two live counts read their partial indexes alone: the conditions are written
            # as the indexes declare them (bound parameters made SQLite read every message).
            backlog = conn.scalar(
                select(func.count()).select_from(t.messages).where(text(t.ACCEPTED_OR_QUEUED))
            )
            names = _connector_names(conn)
            awaiting = {
                names.get(int(cid), str(cid)): int(n)
                for cid, n in conn.execute(
                    select(_m.connector_id, func.count())
                    .where(text(t.SUBMITTED_ONLY), _m.connector_id.is_not(None))
                    .group_by(_m.connector_id)
                )
            }
        return Summary(
            now_ms=now,
            window_ms=window_ms,
            accepted=int(accepted or 0),
            finished=int(finished),
            delivered=int(delivered),
            backlog=int(backlog or 0),
            awaiting_receipt=awaiting,
            by_state=by_state,
        )

    def message_series(
        self,
        by: SeriesKey,
        *,
        since_ms: int,
        until_ms: int | None = None,
        bucket_ms: int = 60_000,
        customer_id: int | None = None,
        top: int = 8,
    ) -> Series:
        """Messages created per bucket, split by ``by``; keys beyond the ``top`` are "other"."""
        if by not in SERIES_KEYS:
            raise ValueError(f"series by {by!r}: one of {', '.join(SERIES_KEYS)}")
        until = self.now_ms() if until_ms is None else until_ms
        bucket_ms = max(bucket_ms, 1000, (until - since_ms) // MAX_BUCKETS + 1)
        first = since_ms // bucket_ms
        buckets = [b * bucket_ms for b in range(first, (until - 1) // bucket_ms + 1)]
        column = {
            "state": _m.state,
            "country": _m.country_code,
            "connector": _m.connector_id,
            "customer": _m.customer_id,
        }[by]
        bucket = (_m.created_ms // bucket_ms).label("bucket")
        query = (
            select(bucket, column, func.count())
            .where(_m.created_ms >= since_ms, _m.created_ms < until)
            .group_by(bucket, column)
        )
        if customer_id is not None:
            query = query.where(_m.customer_id == customer_id)
        with self._connect(write=False) as conn:
            rows = [(int(b), k, int(n)) for b, k, n in conn.execute(query)]
            labels = _labeller(conn, by)
        totals: dict[str, int] = defaultdict(int)
        for _, key, n in rows:
            totals[labels(key)] += n
        keep = set(sorted(totals, key=lambda k: (-totals[k], k))[:top])
        points: dict[str, list[int]] = {}
        for b, key, n in rows:
            label = labels(key)
            label = label if label in keep else "other"
            series = points.setdefault(label, [0] * len(buckets))
            index = b - first
            if 0 <= index < len(buckets):
                series[index] += n
        ordered = dict(sorted(points.items(), key=lambda kv: (kv[0] == "other", -sum(kv[1]))))
        return Series(by=by, bucket_ms=bucket_ms, buckets=buckets, points=ordered)

    def state_counts(
        self, *, customer_id: int | None = None, since_ms: int | None = None
    ) -> dict[str, int]:
        """Messages per machine state (optionally of one customer, created since a time)."""
        query = select(_m.state, func.count()).group_by(_m.state)
        if customer_id is not None:
            query = query.where(_m.customer_id == customer_id)
        if since_ms is not None:
            query = query.where(_m.created_ms >= since_ms)
        with self._connect(write=False) as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def fees(self, customer_id: int, since_ms: int) -> int:
        """Micro-units charged to a customer for messages created since ``since_ms``."""
        query = select(func.coalesce(func.sum(_m.fee_micros), 0)).where(
            _m.customer_id == customer_id, _m.created_ms >= since_ms
        )
        with self._connect(write=False) as conn:
            return int(conn.scalar(query) or 0)


# -- helpers ----------------------------------------------------------------------------------


def _bump(conn: Any) -> None:
    conn.execute(
        update(t.config_version)
        .where(t.config_version.c.id == 1)
        .values(version=t.config_version.c.version + 1)
    )


def _token(row: Any) -> AdminToken:
    return AdminToken(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        enabled=bool(row["enabled"]),
        created_ms=row["created_ms"],
        last_used_ms=row["last_used_ms"],
    )


def _receipts_on_parts(
    parts: Sequence[dict[str, Any]], stored: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The receipt each part was decided by, as the ``receipts`` row it no longer writes.

    Only receipts that matched nothing are ``receipts`` rows (schema 0014); a matched one is
    kept on its part (stat, err, when), without its raw text. Parts whose receipt is a stored
    row already (stored before 0014) are not repeated.
    """
    have = {(r["connector_id"], r["carrier_id"]) for r in stored}
    return [
        {
            "id": None, "connector_id": p["connector_id"], "connector": p.get("connector"),
            "carrier_id": p["carrier_id"], "stat": p["receipt_stat"], "err": p["receipt_err"],
            "sms_uid": p["sms_uid"], "raw": None, "received_ms": p["done_ms"],
        }
        for p in parts
        if p["receipt_stat"] and (p["connector_id"], p["carrier_id"]) not in have
    ]  # fmt: skip


def _accepted_pushes(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accepted push of each done report, as the attempt row it no longer writes.

    Only failed attempts are ``report_attempts`` rows (schema 0014); the accepted one is on
    the outbox row (when, HTTP status, duration). A report given up has no accepted push.
    """
    return [
        {
            "id": None, "outbox_id": r["id"], "sms_uid": r["sms_uid"],
            "attempted_ms": r["done_ms"], "duration_ms": r["duration_ms"],
            "http_status": r["http_status"], "ok": True, "answer": None,
        }
        for r in reports
        if r["done_ms"] is not None and not r["last_error"] and r["attempts"]
    ]  # fmt: skip


def _dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in rows]


def _connector_names(conn: Any) -> dict[int, str]:
    return {int(i): str(n) for i, n in conn.execute(select(t.connectors.c.id, t.connectors.c.name))}


def _found(row: Any, connectors: dict[int, str]) -> FoundMessage:
    record = MessageRecord.from_row(row)
    return FoundMessage(
        record=record,
        customer=row["customer_name"],
        connector=None if record.connector_id is None else connectors.get(record.connector_id),
    )


def _labeller(conn: Any, by: SeriesKey) -> Any:
    """key (as grouped) → display label, for one series dimension."""
    if by == "connector":
        names = _connector_names(conn)
        return lambda k: "unassigned" if k is None else names.get(int(k), f"#{k}")
    if by == "customer":
        found = {
            int(i): str(n) for i, n in conn.execute(select(t.customers.c.id, t.customers.c.name))
        }
        return lambda k: found.get(int(k), f"#{k}")
    if by == "country":
        return lambda k: f"+{k}"
    return lambda k: str(k)


def ids_of(items: Sequence[FoundMessage]) -> list[str]:
    """The SMS_UIDs of search results (tests and the console's "next page" link)."""
    return [f.record.sms_uid for f in items]
