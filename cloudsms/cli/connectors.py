"""``cloudsms connectors …``: SMPP carrier connectors, their settings and their live status.

Numbers are taken as text and validated by ``cloudsms.services.carrier``, so every front end
gives the same one-line message for the same mistake. ``add`` prompts for the password (hidden)
when ``--password`` is not given, which keeps it out of shell history.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

import typer

from cloudsms.cli._common import operator_name, say, state, table
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus
from cloudsms.services.audit import Audited, AuditTrail
from cloudsms.services.carrier import CarrierOperator

app = typer.Typer(help="Carrier connectors (SMPP 3.4 client binds): settings and live status.")

#: A status row not refreshed for this long (and past its lease) is shown as stale: the
#: process that owned the connector has probably stopped.
STALE_AFTER_MS = 10_000


def carrier(ctx: typer.Context) -> CarrierOperator:
    """The carrier service on the CLI's store (opened on first use)."""
    store = state(ctx).store
    audited: Any = Audited(CarrierOperator(store), AuditTrail(store, operator_name()), "cli")
    return cast(CarrierOperator, audited)


Name = Annotated[str, typer.Argument(help="Connector name.")]
Host = Annotated[str | None, typer.Option(help="SMSC host name or IP address.")]
Port = Annotated[str | None, typer.Option(help="SMSC port (1-65535).")]
SystemId = Annotated[str | None, typer.Option(help="Bind system_id (≤ 15 characters).")]
SystemType = Annotated[str | None, typer.Option(help="Bind system_type (≤ 12 characters).")]
Bind = Annotated[
    str | None, typer.Option("--bind", help="trx (one transceiver) or tx_rx (TX+RX pair).")
]
Window = Annotated[str | None, typer.Option(help="Outstanding submits at most (1-1000).")]
Throughput = Annotated[str | None, typer.Option(help="Segments per second, 0 = unlimited.")]
EnquireLink = Annotated[str | None, typer.Option(help="Seconds between enquire_link.")]
ResponseTimeout = Annotated[str | None, typer.Option(help="Seconds to wait for a response.")]
ReconnectMax = Annotated[str | None, typer.Option(help="Longest reconnect backoff, seconds.")]
LongMode = Annotated[str | None, typer.Option(help="udh8, udh16, sar or payload.")]
DataCodings = Annotated[
    str | None, typer.Option(help='data_coding values taken, e.g. "0,3,8" (0 or 8 required).')
]
SourceTon = Annotated[str | None, typer.Option(help='Source TON 0-6, or "auto" (from sender).')]
SourceNpi = Annotated[str | None, typer.Option(help='Source NPI, or "auto" (from sender).')]
DestTon = Annotated[str | None, typer.Option(help="Destination TON (default 1).")]
DestNpi = Annotated[str | None, typer.Option(help="Destination NPI (default 1).")]
IdMode = Annotated[
    str | None, typer.Option(help="Message id form: as_is, ignore_case, hex, decimal, …")
]


#: Options ``add`` and ``set`` share, passed through to the carrier service as given.
OPTIONAL_SETTINGS = (
    "system_type", "bind", "window", "throughput", "enquire_link", "response_timeout",
    "reconnect_max", "long_mode", "data_codings", "source_ton", "source_npi", "dest_ton",
    "dest_npi", "id_mode",
)  # fmt: skip


def _optional_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The shared optional settings among a command's arguments (``locals()``)."""
    return {key: values[key] for key in OPTIONAL_SETTINGS}


@app.command("add")
def add(
    ctx: typer.Context,
    name: Name,
    host: Annotated[str, typer.Option(help="SMSC host name or IP address.")],
    port: Annotated[str, typer.Option(help="SMSC port (1-65535).")],
    system_id: Annotated[str, typer.Option(help="Bind system_id (≤ 15 characters).")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="Bind password (≤ 8 characters).")
    ],
    system_type: SystemType = None,
    bind: Bind = None,
    window: Window = None,
    throughput: Throughput = None,
    enquire_link: EnquireLink = None,
    response_timeout: ResponseTimeout = None,
    reconnect_max: ReconnectMax = None,
    long_mode: LongMode = None,
    data_codings: DataCodings = None,
    source_ton: SourceTon = None,
    source_npi: SourceNpi = None,
    dest_ton: DestTon = None,
    dest_npi: DestNpi = None,
    id_mode: IdMode = None,
) -> None:
    """Add a connector (enabled; route rules decide which traffic it gets)."""
    created = carrier(ctx).add_connector(
        name,
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        **_optional_settings(locals()),
    )
    say(f"connector {created.name!r} added (id {created.id}, {created.host}:{created.port})")


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Name,
    rename: Annotated[str | None, typer.Option(help="New connector name.")] = None,
    host: Host = None,
    port: Port = None,
    system_id: SystemId = None,
    password: Annotated[str | None, typer.Option(help="Bind password (≤ 8 characters).")] = None,
    system_type: SystemType = None,
    bind: Bind = None,
    window: Window = None,
    throughput: Throughput = None,
    enquire_link: EnquireLink = None,
    response_timeout: ResponseTimeout = None,
    reconnect_max: ReconnectMax = None,
    long_mode: LongMode = None,
    data_codings: DataCodings = None,
    source_ton: SourceTon = None,
    source_npi: SourceNpi = None,
    dest_ton: DestTon = None,
    dest_npi: DestNpi = None,
    id_mode: IdMode = None,
) -> None:
    """Change settings; options not given are left as they are (all checked first)."""
    changed = carrier(ctx).set_connector(
        name,
        rename=rename,
        host=host,
        port=port,
        system_id=system_id,
        password=password,
        **_optional_settings(locals()),
    )
    say(f"{', '.join(c.replace('_', ' ') for c in changed)} of connector {name!r} set")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All connectors and their main settings."""
    table(
        "Connectors",
        [
            "name",
            "id",
            "enabled",
            "address",
            "system id",
            "bind",
            "window",
            "throughput",
            "long mode",
            "data codings",
            "id mode",
        ],
        (
            [
                c.name,
                c.id,
                c.enabled,
                f"{c.host}:{c.port}",
                c.system_id,
                c.bind_mode,
                c.window,
                _throughput(c.throughput),
                c.long_mode,
                _codings(c),
                c.id_mode,
            ]
            for c in carrier(ctx).connectors()
        ),
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Name,
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the bind password.")
    ] = False,
) -> None:
    """One connector: every setting (password masked unless --show-password)."""
    c = carrier(ctx).connector(name)
    auto = "auto (from the sender)"
    table(
        f"Connector {c.name}",
        ["setting", "value"],
        [
            ("id", c.id),
            ("enabled", c.enabled),
            ("host", c.host),
            ("port", c.port),
            ("system id", c.system_id),
            ("password", c.password if show_password else "********"),
            ("system type", c.system_type or "-"),
            ("bind", c.bind_mode),
            ("window", c.window),
            ("throughput", _throughput(c.throughput)),
            ("enquire link", f"{c.enquire_link_s} s"),
            ("response timeout", f"{c.response_timeout_s} s"),
            ("reconnect max", f"{c.reconnect_max_s} s"),
            ("long mode", c.long_mode),
            ("data codings", _codings(c)),
            ("source ton", auto if c.source_ton is None else c.source_ton),
            ("source npi", auto if c.source_npi is None else c.source_npi),
            ("dest ton", c.dest_ton),
            ("dest npi", c.dest_npi),
            ("id mode", c.id_mode),
        ],
    )


@app.command("enable")
def enable(ctx: typer.Context, name: Name) -> None:
    """Bind the connector again and let routing use it."""
    carrier(ctx).set_enabled(name, True)
    say(f"connector {name!r} enabled")


@app.command("disable")
def disable(ctx: typer.Context, name: Name) -> None:
    """Unbind the connector; routing skips it (its rules act as if removed)."""
    carrier(ctx).set_enabled(name, False)
    say(f"connector {name!r} disabled")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Name,
    force: Annotated[
        bool, typer.Option("--force", help="Also remove the route rules that use it.")
    ] = False,
) -> None:
    """Remove a connector (refused while route rules use it, unless --force)."""
    rules = carrier(ctx).remove_connector(name, force=force)
    say(f"connector {name!r} removed" + (f" with {rules} route rule(s)" if rules else ""))


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Live state of every connector, as last written by the process that runs it."""
    now = int(time.time() * 1000)
    table(
        "Connector status",
        ["name", "state", "window", "rate/s", "submitted", "last error", "updated"],
        (
            [
                s.name,
                _state(s, now),
                f"{s.window_in_use}/{s.window_size}",
                s.submit_rate,
                s.submitted_total,
                s.last_error,
                _ago(s.updated_ms, now),
            ]
            for s in carrier(ctx).statuses()
        ),
    )


def _throughput(value: int) -> str:
    return "unlimited" if value == 0 else f"{value}/s"


def _codings(c: ConnectorConfig) -> str:
    return ",".join(str(dc) for dc in sorted(c.data_codings))


def _state(s: ConnectorStatus, now: int) -> str:
    if s.updated_ms is None:
        return f"{s.state} (never started)" if s.enabled else s.state
    lease = s.lease_until_ms if s.lease_until_ms is not None else s.updated_ms + STALE_AFTER_MS
    if s.state != "disabled" and now > lease:
        return f"{s.state} (stale)"
    return s.state


def _ago(updated_ms: int | None, now: int) -> str:
    if updated_ms is None:
        return "never"
    seconds = max(0, now - updated_ms) // 1000
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
