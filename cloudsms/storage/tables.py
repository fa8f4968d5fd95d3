"""The one schema for SQLite and PostgreSQL (SQLAlchemy Core).

Migrations under ``migrations/versions`` are generated from these tables and run on both engines.
Times are integer milliseconds since the Unix epoch (UTC): portable, exact, cheap to compare.
Money is integer micro-units (see ``cloudsms.domain.money``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

from cloudsms.domain.routing import connector_default

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row; every operator change bumps ``version`` so running servers reload within a second.
config_version = Table(
    "config_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

price_lists = Table(
    "price_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
)

prices = Table(
    "prices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "price_list_id", Integer, ForeignKey("price_lists.id", ondelete="CASCADE"), nullable=False
    ),
    #: E.164 digits: a calling code ("852") or a longer prefix ("8526"); longest match wins.
    Column("prefix", String(16), nullable=False),
    Column("price_micros", BigInteger, nullable=False),
    UniqueConstraint("price_list_id", "prefix"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("auth_key", String(128), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("currency", String(3), nullable=False),
    Column("balance_micros", BigInteger, nullable=False, default=0),
    #: How far below zero the balance may go (0: prepaid only).
    Column("credit_limit_micros", BigInteger, nullable=False, default=0),
    Column("price_list_id", Integer, ForeignKey("price_lists.id"), nullable=True),
    Column("callback_url", Text, nullable=True),
    #: Sender used when a packet has no ORIGINAL_ADDR.
    Column("default_sender", String(32), nullable=True),
    #: SHA-256 of the client certificate (hex, lower case) this key must arrive with, if set.
    Column("client_cert_sha256", String(64), nullable=True),
    #: Backlog above which the API answers Queue_too_large (None: the platform default).
    Column("max_backlog", Integer, nullable=True),
    #: Push intermediate states (ENROUTE, ACCEPTED) too, not only final ones.
    Column("report_intermediate", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    #: PEM CA bundle that signs the customer's HTTPS callback certificate (None: system store).
    Column("callback_ca_pem", Text, nullable=True),
    #: Where inbound messages (SMS_PUSH_MO) are pushed; None: to callback_url.
    Column("mo_url", Text, nullable=True),
)

customer_networks = Table(
    "customer_networks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    #: An IPv4 or IPv6 network in CIDR form; a single address is a /32 or /128.
    Column("cidr", String(64), nullable=False),
    UniqueConstraint("customer_id", "cidr"),
)

#: Balance changes made by operators (top-ups, corrections): the audit trail of money.
balance_ledger = Table(
    "balance_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("delta_micros", BigInteger, nullable=False),
    Column("balance_after_micros", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

routes = Table(
    "routes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: The ROUTE_ID customers send.
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    #: Whether the carriers behind this route take Latin-1 (DCS 3); otherwise UCS-2 is used.
    Column("latin1", Boolean, nullable=False, default=False),
    #: A suspended route answers Send_failed per recipient instead of accepting.
    Column("enabled", Boolean, nullable=False, default=True),
)

route_grants = Table(
    "route_grants",
    metadata,
    Column(
        "customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("route_id", Integer, ForeignKey("routes.id", ondelete="CASCADE"), primary_key=True),
)

blacklist = Table(
    "blacklist",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: None: platform-wide.
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=True),
    #: E.164 digits, calling code included.
    Column("number", String(40), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("customer_id", "number"),
)

#: Customers' SMPP accounts (``cloudsms.domain.smpp_accounts``): not the AUTH_KEY, each a
#: system_id and a salted scrypt digest of its password.
smpp_accounts = Table(
    "smpp_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("system_id", String(16), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    #: Bind modes allowed, comma-separated: tx, rx, trx.
    Column("binds", String(16), nullable=False),
    Column("max_sessions", Integer, nullable=False),
    #: Segments per second over all of the account's sessions (0: no limit).
    Column("throughput", Integer, nullable=False),
    #: The ROUTE_ID messages submitted on this account take.
    Column("route", String(255), nullable=False),
    Column("intermediate_receipts", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
    #: Inbound messages (MO) routed to the customer go out as deliver_sm on this account's
    #: RX / TRX sessions (``cloudsms.api.smpp_mo``) instead of SMS_PUSH_MO over HTTP.
    Column("mo", Boolean, nullable=False, default=True, server_default=true()),
    Column("created_ms", BigInteger, nullable=False),
)

country_policies = Table(
    "country_policies",
    metadata,
    Column("country_code", Integer, primary_key=True, autoincrement=False),
    Column("region", String(2), nullable=False),
    Column("requires_template", Boolean, nullable=False, default=False),
    Column("requires_signature", Boolean, nullable=False, default=False),
    Column("requires_registered_sender", Boolean, nullable=False, default=False),
    #: "any", "numeric" or "alpha": which sender IDs the destination takes.
    Column("sender_format", String(8), nullable=False, default="any"),
    Column("note", Text, nullable=True),
    #: Comma-separated opt-out / opt-in keywords of the destination's handsets; NULL: the
    #: platform's defaults (``cloudsms.domain.opt_out``).
    Column("opt_out_keywords", Text, nullable=True),
    Column("opt_in_keywords", Text, nullable=True),
)

#: Each customer's opt-out list: numbers that sent STOP (or were put there by an operator or the
#: customer); the accept path answers Intercept for them (``cloudsms.domain.opt_out``).
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    #: E.164 digits, calling code included (as the blacklist).
    Column("number", String(40), nullable=False),
    #: keyword, operator or customer.
    Column("via", String(16), nullable=False),
    Column("keyword", String(64), nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("customer_id", "number"),
)

#: Signatures, templates and sender IDs share one approval life cycle: pending → approved|rejected.
signatures = Table(
    "signatures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("text", String(64), nullable=False),
    Column("status", String(10), nullable=False, default="pending"),
    Column("note", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("decided_ms", BigInteger, nullable=True),
    UniqueConstraint("customer_id", "text"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    #: Text with ``{name}`` slots; None country: valid for every regulated destination.
    Column("body", Text, nullable=False),
    Column("country_code", Integer, nullable=True),
    Column("status", String(10), nullable=False, default="pending"),
    Column("note", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("decided_ms", BigInteger, nullable=True),
)

sender_ids = Table(
    "sender_ids",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("sender", String(32), nullable=False),
    Column("country_code", Integer, nullable=True),
    Column("status", String(10), nullable=False, default="pending"),
    Column("note", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("decided_ms", BigInteger, nullable=True),
    UniqueConstraint("customer_id", "sender", "country_code"),
)

#: One row per accepted recipient: the durable record behind every SMS_UID.
#: Width of ``messages.detail``: writers clip to it (PostgreSQL refuses a longer value).
DETAIL_LENGTH = 64

#: The conditions of the partial indexes on ``messages.state``, for the statements that must be
#: served by them too: SQLite uses a partial index only for a WHERE that contains the index's
#: condition as written (to it ``state IN ('submitted')`` is not ``state = 'submitted'``, and
#: ``state = 'queued'`` does not imply ``state IN ('accepted', 'queued')``); without it, a
#: periodic job scans the whole table, every row a message ever was, under the write lock.
ACCEPTED_ONLY = "state = 'accepted'"
SUBMITTED_ONLY = "state = 'submitted'"
ACCEPTED_OR_QUEUED = "state IN ('accepted', 'queued')"


def unindexed(column: str) -> str:
    """``column`` in a form no index is declared on, for the guard of a statement keyed by row.

    Why (issue 14, PostgreSQL): a statement that finds its rows by primary key (``WHERE
    messages.sms_uid = v.column5 AND messages.state IN ('queued')``) also names a condition
    that implies a partial index's (``ix_messages_backlog``: accepted or queued). When the table
    has grown since its last ANALYZE (always, under load), PostgreSQL estimates that index at a
    few dozen rows and reads all of it as a bitmap, every dead entry since the last vacuum
    included, then matches the batch's rows against it: ``EXPLAIN ANALYZE`` after a
    20,000-message run read 20,200 entries and 599 heap pages to update 50 rows (3.1 ms,
    against 0.3 ms for 50 probes of the primary key), and that UPDATE was ~40 % of the
    server's statement time in the harness. Written
    as ``(state || '')``, the guard implies nothing about any index, so each row is found by
    its key and the guard is checked on it. SQLite, which matches partial indexes by their
    condition as written, plans these statements by key either way.
    """
    return f"({column} || '')"


def pending_unindexed(table: str) -> str:
    """``{table}.done_ms IS NULL`` (a pending report) for a statement keyed by row: not served
    by the partial ``ix_report_outbox_due`` (see :func:`unindexed`)."""
    return f"COALESCE({table}.done_ms, -1) = -1"


messages = Table(
    "messages",
    metadata,
    Column("sms_uid", String(32), primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("serial", Integer, nullable=False),
    Column("country_code", Integer, nullable=False),
    Column("dest_msisdn", String(32), nullable=False),
    Column("route_name", String(255), nullable=False),
    Column("sender", String(32), nullable=False),
    #: Final text: signature applied.
    Column("content", Text, nullable=False),
    #: "gsm7", "latin1" or "ucs2".
    Column("encoding", String(8), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("send_at_ms", BigInteger, nullable=False),
    #: CUSTOMER_BODY exactly as received (serialized JSON), pushed back unchanged.
    Column("customer_body", Text, nullable=True),
    #: Machine state (cloudsms.domain.status.MessageState value).
    Column("state", String(16), nullable=False),
    #: SMS_STATE last known (reports), None before any.
    Column("sms_state", Integer, nullable=True),
    #: RESULT_DESC for the report (e.g. LOCAL_REJECTED) and the platform's own cause.
    Column("result_desc", String(32), nullable=True),
    Column("detail", String(DETAIL_LENGTH), nullable=True),
    Column("fee_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    #: Submit attempts so far (retries after throttling or a lost link count too).
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    #: Connector that took the message, and when the last segment was acknowledged.
    Column("connector_id", Integer, nullable=True),
    Column("submitted_ms", BigInteger, nullable=True),
    Column("final_ms", BigInteger, nullable=True),
    #: The worker process (``workers.id``) whose claim holds the message while it is QUEUED: only
    #: that process records its outcome, and the claim is recovered when that process dies.
    Column("claimed_by", Integer, nullable=True),
    #: A connector chosen by another process's routing, whose owner is to submit the message
    #: (ACCEPTED only; cleared by the claim). See ``cloudsms.workers.leases``.
    Column("via_connector", Integer, nullable=True),
    #: Submitted over SMPP asking for receipts: the account (``smpp_accounts.id``) whose RX /
    #: TRX sessions get them as deliver_sm instead of an HTTP push, and registered_delivery's
    #: receipt bits (1: final, 2: failure only). NULL: reports go to the HTTP callback.
    Column("smpp_account_id", Integer, nullable=True),
    Column("smpp_receipt", Integer, nullable=True),
    #: Its own deadline (SMPP validity_period, epoch ms): not final by then, the expiry job ends
    #: it EXPIRED and the dispatcher no longer takes it. NULL: only the platform's expiry.
    Column("expires_ms", BigInteger, nullable=True),
    #: The message_id its SMPP receipts carry when not its SMS_UID (a submit_multi's recipients
    #: share the first one's, as the submit_multi_resp said). NULL: the SMS_UID.
    Column("smpp_message_id", String(32), nullable=True),
    #: A message sent as one submit_sm keeps its carrier id and receipt here, not in a
    #: ``message_parts`` row (one row write less per message, issue 14); normalised per the
    #: connector's id_mode like a part's. Messages of several submit_sm have parts.
    Column("carrier_id", String(64), nullable=True),
    Column("receipt_stat", String(8), nullable=True),
    Column("receipt_err", String(8), nullable=True),
    #: The indexes on the state are partial: each holds only the messages of the states its
    #: query looks for, so a message leaves them as it moves on instead of being rewritten in
    #: them at every state change, and they stay as small as the live traffic.
    #: Claims: ACCEPTED messages by priority and due time.
    Index(
        "ix_messages_due",
        "priority",
        "send_at_ms",
        sqlite_where=text(ACCEPTED_ONLY),
        postgresql_where=text(ACCEPTED_ONLY),
    ),
    #: Expiry and the console's "awaiting receipts": SUBMITTED messages by submission time.
    Index(
        "ix_messages_submitted",
        "submitted_ms",
        sqlite_where=text(SUBMITTED_ONLY),
        postgresql_where=text(SUBMITTED_ONLY),
    ),
    #: Receipts of one-part messages find their message by the carrier's id.
    Index(
        "ix_messages_carrier",
        "connector_id",
        "carrier_id",
        sqlite_where=text("carrier_id IS NOT NULL"),
        postgresql_where=text("carrier_id IS NOT NULL"),
    ),
    #: Hand-offs waiting for their connector's owner: few rows, so a partial index.
    Index(
        "ix_messages_handoff",
        "via_connector",
        "send_at_ms",
        sqlite_where=text("via_connector IS NOT NULL"),
        postgresql_where=text("via_connector IS NOT NULL"),
    ),
    #: Backlog per customer (Queue_too_large: ACCEPTED or QUEUED) counted from the index alone.
    Index(
        "ix_messages_backlog",
        "customer_id",
        sqlite_where=text(ACCEPTED_OR_QUEUED),
        postgresql_where=text(ACCEPTED_OR_QUEUED),
    ),
    #: Messages with a deadline, by state: the expiry job's range scan (few rows: SMPP only).
    Index(
        "ix_messages_expires",
        "state",
        "expires_ms",
        sqlite_where=text("expires_ms IS NOT NULL"),
        postgresql_where=text("expires_ms IS NOT NULL"),
    ),
    Index("ix_messages_customer_created", "customer_id", "created_ms"),
    #: Reply matching of inbound messages: who last sent to this number (``inbound_ops``).
    Index("ix_messages_dest", "dest_msisdn", "created_ms"),
)

#: Last SERIAL used for each customer's report pushes (1..65535, wraps; SPEC §1), written by
#: the report claim (``report_ops.take_serials``). A table of its own, not a column of
#: ``customers`` (before schema 0017): the claim runs in the worker's dispatch transaction, and
#: on PostgreSQL its lock on the customer's row made the API's accepts, which lock that row for
#: the balance, wait for the worker's commits (issue 14: the accept's ``SELECT … FOR UPDATE``
#: was seen waiting on a row lock in 17 of 60 samples of ``pg_stat_activity``).
report_serials = Table(
    "report_serials",
    metadata,
    Column(
        "customer_id", Integer, ForeignKey("customers.id"), primary_key=True, autoincrement=False
    ),
    Column("serial", Integer, nullable=False),
)

#: Answers by packet fingerprint, so a blind client retry returns the same SMS_UIDs (SPEC replay).
replays = Table(
    "replays",
    metadata,
    #: SHA-256 (hex) over AUTH_KEY, SERIAL, TIME and the raw body.
    Column("packet_key", String(64), primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("answer", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

# --- carrier delivery (SMPP connectors, routing rules, segments, receipts) -------------------


def codings_text(codings: Iterable[int]) -> str:
    """{8, 0} → "0,8": how ``connectors.data_codings`` stores a set of data_coding values."""
    return ",".join(str(dc) for dc in sorted(set(codings)))


def _setting_column(name: str, kind: Any) -> Column[Any]:
    """A ``connectors`` column whose default is the ``ConnectorSettings`` one, stored form."""
    default = connector_default(name)
    if name == "data_codings":
        default = codings_text(default)
    return Column(name, kind, nullable=False, default=default)


#: An SMPP client connection to a carrier (SMSC), configured by operators. Column defaults come
#: from ``cloudsms.domain.routing.ConnectorSettings`` (client-side: the migrations declare none).
connectors = Table(
    "connectors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("system_id", String(16), nullable=False),
    Column("password", String(9), nullable=False),
    _setting_column("system_type", String(13)),
    #: "trx" (one transceiver bind) or "tx_rx" (a transmitter and a receiver bind).
    _setting_column("bind_mode", String(8)),
    #: Outstanding submit_sm without a response, at most.
    _setting_column("window", Integer),
    #: Segments per second at most (0: unlimited).
    _setting_column("throughput", Integer),
    _setting_column("enquire_link_s", Integer),
    _setting_column("response_timeout_s", Integer),
    _setting_column("reconnect_max_s", Integer),
    #: Long messages: "udh8", "udh16", "sar" or "payload".
    _setting_column("long_mode", String(8)),
    #: data_coding values the carrier takes, comma-separated subset of "0,3,8".
    _setting_column("data_codings", String(16)),
    Column("source_ton", Integer, nullable=True),
    Column("source_npi", Integer, nullable=True),
    _setting_column("dest_ton", Integer),
    _setting_column("dest_npi", Integer),
    #: How this carrier writes message ids (see cloudsms.smpp.receipt): receipt ↔ submit_sm_resp.
    _setting_column("id_mode", String(16)),
    _setting_column("enabled", Boolean),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

#: Route policy: for a ROUTE_ID, which connectors serve which destinations.
route_rules = Table(
    "route_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("route_id", Integer, ForeignKey("routes.id", ondelete="CASCADE"), nullable=False),
    #: E.164 digit prefix of the destination ("" matches every destination); longest match wins.
    Column("prefix", String(16), nullable=False, default=""),
    Column(
        "connector_id", Integer, ForeignKey("connectors.id", ondelete="CASCADE"), nullable=False
    ),
    #: Lower is tried first; a connector that is down or rejecting fails over to the next group.
    Column("priority", Integer, nullable=False, default=0),
    #: Share of traffic among connectors of the same prefix and priority.
    Column("weight", Integer, nullable=False, default=1),
    UniqueConstraint("route_id", "prefix", "connector_id"),
)

#: One row per segment handed to a carrier: the carrier's id for it and what became of it.
message_parts = Table(
    "message_parts",
    metadata,
    Column(
        "sms_uid", String(32), ForeignKey("messages.sms_uid", ondelete="CASCADE"), primary_key=True
    ),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("connector_id", Integer, nullable=False),
    #: Normalised per the connector's id_mode, so receipts match whatever form they use.
    Column("carrier_id", String(64), nullable=True),
    Column("submit_status", Integer, nullable=True),
    #: Receipt stat (DELIVRD, UNDELIV, …) once known.
    Column("receipt_stat", String(8), nullable=True),
    Column("receipt_err", String(8), nullable=True),
    Column("submitted_ms", BigInteger, nullable=True),
    Column("done_ms", BigInteger, nullable=True),
    Index("ix_message_parts_carrier", "connector_id", "carrier_id"),
)

#: Every carrier receipt as received, matched or not (operators look here for DLR problems).
receipts = Table(
    "receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("connector_id", Integer, nullable=False),
    Column("carrier_id", String(64), nullable=False),
    Column("stat", String(8), nullable=False),
    Column("err", String(8), nullable=True),
    Column("sms_uid", String(32), nullable=True),
    Column("raw", Text, nullable=True),
    Column("received_ms", BigInteger, nullable=False),
    #: Receipts waiting for their submit_sm_resp mapping: few, looked up on every batch.
    Index(
        "ix_receipts_waiting",
        "connector_id",
        "carrier_id",
        sqlite_where=text("sms_uid IS NULL"),
        postgresql_where=text("sms_uid IS NULL"),
    ),
    #: A message's receipts (its lifecycle page); SMS_UIDs are time-ordered, so appends are cheap.
    Index("ix_receipts_sms_uid", "sms_uid"),
)

#: Delivery reports waiting to be pushed to customers (outbox: written with the state change).
report_outbox = Table(
    "report_outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("sms_uid", String(32), nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("sms_state", Integer, nullable=False),
    Column("result_desc", String(32), nullable=False),
    #: When the carrier (or the platform) reported the state.
    Column("report_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("done_ms", BigInteger, nullable=True),
    #: The worker (``workers.id``) that claimed the row for a push, until its outcome is
    #: recorded: when that worker dies, the row is due again at once, not at the lease's end.
    Column("claimed_by", Integer, nullable=True),
    #: The accepted push's HTTP status and duration: a successful attempt writes no
    #: ``report_attempts`` row (those are for failed attempts), so its facts are kept here.
    Column("http_status", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=True),
    #: Pending rows only: a report leaves the index when it is done.
    Index(
        "ix_report_outbox_due",
        "next_attempt_ms",
        sqlite_where=text("done_ms IS NULL"),
        postgresql_where=text("done_ms IS NULL"),
    ),
    Index("ix_report_outbox_uid", "sms_uid"),
    Index("ix_report_outbox_customer_due", "customer_id", "next_attempt_ms"),
    Index(
        "ix_report_outbox_claimed",
        "claimed_by",
        sqlite_where=text("claimed_by IS NOT NULL"),
        postgresql_where=text("claimed_by IS NOT NULL"),
    ),
)

#: Live state of each connector, written every second by the process that owns it; the CLI, the
#: console and other processes read it. ``owner``/``lease_until_ms`` are the ownership lease.
connector_status = Table(
    "connector_status",
    metadata,
    Column(
        "connector_id",
        Integer,
        ForeignKey("connectors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    #: "down", "connecting", "bound", "throttled" or "disabled".
    Column("state", String(16), nullable=False),
    Column("window_in_use", Integer, nullable=False, default=0),
    Column("window_size", Integer, nullable=False, default=0),
    #: Segments submitted per second over the last interval.
    Column("submit_rate", Integer, nullable=False, default=0),
    Column("submitted_total", BigInteger, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

#: Worker processes (role worker or all) and their liveness lease, renewed every second. A
#: message claim (``messages.claimed_by``) lives as long as its worker's lease. An id is never
#: given twice (SQLite: AUTOINCREMENT; PostgreSQL: its sequence): a retired worker's row is
#: deleted, and a new worker given its id would make the claims it left look alive.
workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    #: host:pid, for operators (and to spot a dead process of the same host at start).
    Column("name", String(128), nullable=False),
    Column("host", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    #: Database clock (ms): the worker is alive while this is in the future.
    Column("lease_until_ms", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

#: Which worker owns (runs the link of) each connector, until when, and whether its link can
#: take messages now (so other processes' routing can hand messages to it).
connector_leases = Table(
    "connector_leases",
    metadata,
    Column(
        "connector_id",
        Integer,
        ForeignKey("connectors.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    #: ``workers.id`` (no foreign key: a stopped worker's row is deleted, its leases run out).
    Column("owner", Integer, nullable=True),
    #: Database clock (ms); an owner whose lease ran out owns nothing.
    Column("lease_until_ms", BigInteger, nullable=False, default=0),
    Column("available", Boolean, nullable=False, default=False),
)

# --- operations: admin tokens, audit trail, report push attempts ------------------------------

#: Tokens of the admin REST API and console; only a SHA-256 of each token is stored.
admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    #: "admin" (read and change) or "readonly".
    Column("role", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger, nullable=True),
)

#: Who changed what, for every operator change made through the admin API, console or CLI.
audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=True),
    #: JSON text of the change's arguments (secrets masked).
    Column("detail", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

#: Every attempt to push a report, with what the customer's server answered.
report_attempts = Table(
    "report_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("outbox_id", BigInteger, nullable=False),
    Column("sms_uid", String(32), nullable=False, index=True),
    Column("attempted_ms", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("ok", Boolean, nullable=False),
    #: The first 500 characters of the answer body, or the transport error.
    Column("answer", Text, nullable=True),
)

#: Long numbers and short codes given to customers: inbound messages to them go to the customer
#: (``keyword`` "": every message; else only those whose first word it is, on a shared code).
inbound_numbers = Table(
    "inbound_numbers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False),
    Column("keyword", String(32), nullable=False, default=""),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("number", "keyword"),
)

#: Parts of concatenated inbound messages waiting for the others (raw user data: decoded whole).
inbound_parts = Table(
    "inbound_parts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("connector_id", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("destination", String(32), nullable=False),
    #: "udh8:42/3": kind, reference and total of the concatenation.
    Column("concat_ref", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    UniqueConstraint("connector_id", "source", "destination", "concat_ref", "seq"),
)

#: Inbound messages (MO), whole, and their push to the customer (an outbox of their own).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("mo_uid", String(32), nullable=False, unique=True),
    Column("connector_id", Integer, nullable=False),
    Column("source", String(32), nullable=False),
    Column("destination", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("data_coding", Integer, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("keyword", String(32), nullable=False),
    #: sha256 of what two deliveries of the same message share (``domain.inbound.dedup_key``).
    Column("dedup_key", String(64), nullable=False),
    Column("customer_id", Integer, nullable=True),
    #: keyword, number, reply, default or unrouted.
    Column("routed_by", String(16), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    #: pending, done, failed (given up) or unrouted.
    Column("push_state", String(16), nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("done_ms", BigInteger, nullable=True),
    Column("claimed_by", Integer, nullable=True),
    #: Who delivers it, decided when it is stored: "http" (SMS_PUSH_MO, ``workers.mo_pusher``)
    #: or "smpp" (deliver_sm on an SMPP session of the customer, ``api.smpp_mo``).
    Column("channel", String(8), nullable=False, default="http", server_default="http"),
    Index("ix_inbound_messages_due", "push_state", "next_attempt_ms"),
    Index("ix_inbound_messages_dedup", "dedup_key", "received_ms"),
    Index("ix_inbound_messages_customer", "customer_id", "received_ms"),
)
