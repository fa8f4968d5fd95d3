"""Settings: one declared table, resolved environment > file > default.

Every setting has a ``CLOUDSMS_<NAME>`` environment variable and may appear in a TOML file
(``--config`` / ``CLOUDSMS_CONFIG``) as ``name = value``. ``docs/settings.md`` lists them all;
``tests/unit/test_settings_doc.py`` fails when one is undocumented.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloudsms.exceptions import ConfigError


def _setting(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = _setting(
        "sqlite:///cloudsms.db", "SQLAlchemy URL of the store: sqlite:///FILE or postgresql://…"
    )
    host: str = _setting("127.0.0.1", "Address the UIP endpoint listens on.")
    port: int = _setting(1815, "Port of the UIP endpoint.")
    path: str = _setting("/dave/io", "HTTP path of the UIP endpoint.")
    trusted_proxies: str = _setting(
        "",
        "Reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed,"
        " on both listeners; empty: the TCP peer is the client address (docs/security.md §10).",
    )
    tls_cert: str = _setting("", "PEM certificate chain for HTTPS; empty serves plain HTTP.")
    tls_key: str = _setting("", "PEM private key for HTTPS.")
    tls_client_ca: str = _setting("", "PEM CA bundle for client certificates (mutual TLS).")
    tls_client_required: bool = _setting(
        False, "With tls_client_ca: refuse the handshake without a valid client certificate."
    )
    max_body_bytes: int = _setting(262_144, "Largest request body accepted, in bytes.")
    replay_window_s: int = _setting(
        600, "Seconds during which an identical packet returns its original ANSWER (0: off)."
    )
    max_schedule_days: int = _setting(7, "How far ahead SMS_SEND_TIME may schedule a message.")
    require_whitelist: bool = _setting(
        False,
        "Refuse keys that have no source-IP whitelist (otherwise such keys work from anywhere).",
    )
    group_commit_max: int = _setting(256, "Most packets committed in one store transaction.")
    pending_writes_limit: int = _setting(
        20_000, "Packets waiting for the store above which the API answers Busy."
    )
    max_backlog: int = _setting(
        2_000_000, "Messages waiting for a carrier, platform-wide, above which Queue_too_large."
    )
    customer_max_backlog: int = _setting(
        200_000, "Default per-customer backlog limit (a customer's own setting overrides it)."
    )
    customer_packets_per_s: float = _setting(
        0.0, "Default per-customer limit on packets/s, per API process; over it: Busy (0: none)."
    )
    customer_messages_per_s: float = _setting(
        0.0, "Default per-customer limit on recipients/s, per API process; over it: Busy (0: none)."
    )
    customer_rate_overrides: str = _setting(
        "", "Per-customer rate limits by name: 'acme=50/500, bulk=0/20000' (packets/s/messages/s)."
    )
    max_inflight_packets: int = _setting(
        512, "Packets being answered at once per process; more get Busy at once (0: no cap)."
    )
    max_connections: int = _setting(
        1000, "Open HTTP connections per process; more get HTTP 503 + Busy and are closed."
    )
    header_timeout_s: float = _setting(
        10.0, "Seconds a client has from connecting (or a request's first byte) to its last header."
    )
    body_timeout_s: float = _setting(
        30.0, "Seconds a client has from the end of the headers to the last byte of the body."
    )
    max_header_bytes: int = _setting(
        32_768, "Largest request line + headers accepted, in bytes (more: HTTP 431, closed)."
    )
    key_guess_limit: int = _setting(
        20,
        "Unknown AUTH_KEYs (or failed SMPP binds) from one source address (IPv6: /64) that start"
        " a cool-down (0: off).",
    )
    key_guess_window_s: float = _setting(
        60.0, "Window in which key_guess_limit unknown AUTH_KEYs start a cool-down, seconds."
    )
    key_guess_cooldown_s: float = _setting(
        300.0, "Cool-down during which a guessing source gets Channel_not_exist without lookup."
    )
    config_poll_s: float = _setting(
        0.5, "How often a running server checks for operator changes, in seconds."
    )
    role: str = _setting(
        "all",
        "What this process runs: api (UIP endpoint), worker (carriers, dispatch, reports), all,"
        " dispatcher (a worker without report pushing), reports (report pushing only) or smpp"
        " (the customers' SMPP server only).",
    )
    processes: str = _setting(
        "auto",
        "Processes of role all: 1, 2 (an api process running its worker as a child) or auto"
        " (2 with two cores or more, unless the database is SQLite :memory:; else 1).",
    )
    dispatch_batch: int = _setting(500, "Most messages the dispatcher claims per store round trip.")
    lease_s: float = _setting(
        5.0,
        "Worker lease (renewed every lease_s/5): a worker silent this long is dead, and its "
        "connectors and in-flight messages move to live workers.",
    )
    pg_notify: bool = _setting(
        True, "On PostgreSQL, wake other processes with LISTEN/NOTIFY (polling is the fallback)."
    )
    report_push_timeout_s: float = _setting(
        10.0, "Delivery report push: whole-request timeout (connect, send, answer), seconds."
    )
    report_lease_s: float = _setting(
        120.0,
        "A claimed report is reserved this long (at least 3 × report_push_timeout_s) for the "
        "process that claimed it; a worker that dies gives its claims back with its lease "
        "(lease_s), so this bounds only a process that is alive but stuck.",
    )
    report_concurrency_per_host: int = _setting(
        16, "Report pushes in flight per customer callback host (connections are reused)."
    )
    report_queue_per_customer: int = _setting(
        2000, "Reports claimed and waiting for a push slot per customer, at most."
    )
    report_retry_base_s: float = _setting(5.0, "First retry delay of a failed report push.")
    report_retry_max_delay_s: float = _setting(1800.0, "Longest delay between report retries.")
    report_retry_give_up_after_s: float = _setting(
        172_800.0, "Report pushes are retried for this long (at least 24 h) before giving up."
    )
    mo_dedup_window_s: int = _setting(
        300,
        "An inbound message identical to one received this recently (same connector, numbers, "
        "concatenation reference and text) is a carrier's redelivery and is dropped.",
    )
    mo_reply_window_s: int = _setting(
        604_800,
        "An inbound message to a number no customer holds goes to the customer that sent to its "
        "sender from that number this recently (0: no reply matching).",
    )
    mo_parts_ttl_s: int = _setting(
        14_400,
        "Parts of a long inbound message are held this long after the last one arrived for the "
        "rest to come; then the incomplete message is dropped (logged, counted).",
    )
    mo_default_customer: str = _setting(
        "", "Customer that gets inbound messages no rule routes (empty: kept as unrouted)."
    )
    report_expire_after_s: float = _setting(
        90_000.0, "A submitted message with no final carrier report after this is EXPIRED (25 h)."
    )
    report_client_cert: str = _setting(
        "", "PEM client certificate presented to HTTPS callbacks (mutual TLS); empty: none."
    )
    report_client_key: str = _setting("", "PEM key of report_client_cert.")
    report_ca_file: str = _setting(
        "", "PEM CA bundle to verify customers' HTTPS callbacks (empty: the system store)."
    )
    report_source_address: str = _setting(
        "", "Local address report pushes leave from (customers whitelist it); empty: any."
    )
    smpp_port: int = _setting(
        0, "Port of the customers' SMPP 3.4 server (0: off; the usual port is 2775)."
    )
    smpp_tls_port: int = _setting(
        0, "Port of the customers' SMPP server over TLS (0: off; needs tls_cert and tls_key)."
    )
    smpp_host: str = _setting("127.0.0.1", "Address the customers' SMPP server listens on.")
    smpp_window: int = _setting(
        100, "submit_sm of one SMPP session waiting for their answer, at most (then throttled)."
    )
    smpp_receipt_window: int = _setting(
        100,
        "deliver_sm (receipts, and inbound messages apart) sent to one SMPP session and not "
        "yet answered, at most.",
    )
    smpp_enquire_link_s: float = _setting(
        30.0,
        "Seconds a customer's SMPP session may be idle before the server sends enquire_link; no "
        "answer within 10 s closes it, freeing its slot (0: never sent).",
    )
    simulator_port: int = _setting(
        0, "Run the built-in SMSC simulator inside the platform on this port (0: off; demo: 2775)."
    )
    simulator_account: str = _setting(
        "demo:demo", "system_id:password the embedded simulator accepts."
    )
    admin_enabled: bool = _setting(
        True, "Serve the admin REST API, the web console and /metrics on their own listener."
    )
    admin_host: str = _setting("127.0.0.1", "Address of the admin listener (keep it private).")
    admin_port: int = _setting(1816, "Port of the admin listener.")
    admin_session_secret: str = _setting(
        "", "Hex key signing console sessions (empty: random per process; set it for several)."
    )
    admin_secure_cookies: bool = _setting(
        False, "Mark console cookies Secure (when the admin listener is behind HTTPS)."
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    log_json: bool = _setting(False, "Write structured JSON log lines instead of text.")

    @classmethod
    def load(
        cls,
        file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Resolve every setting: explicit overrides > environment > file > default."""
        environ = os.environ if environ is None else environ
        file = file or environ.get("CLOUDSMS_CONFIG") or None
        from_file: dict[str, Any] = {}
        if file:
            try:
                from_file = tomllib.loads(Path(file).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read settings file {file}: {exc}") from exc
        values: dict[str, Any] = {}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key in from_file:
            if key not in names:
                raise ConfigError(f"unknown setting {key!r} in {file}")
        for name, fld in names.items():
            env_name = f"CLOUDSMS_{name.upper()}"
            if overrides.get(name) is not None:
                raw: Any = overrides[name]
            elif env_name in environ:
                raw = environ[env_name]
            elif name in from_file:
                raw = from_file[name]
            else:
                continue
            values[name] = _coerce(name, type(fld.default), raw)
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) of every setting, for docs and ``cloudsms settings``."""
        return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(cls)]


def _coerce(name: str, kind: type, raw: Any) -> Any:
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {raw!r} is not a valid {kind.__name__}") from exc
    return text
