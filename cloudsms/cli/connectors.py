"""``cloudsms connectors …``: SMPP carrier connectors, their settings and their live status.

The ``add`` and ``set`` options are generated from ``ConnectorSettings`` (the admin API's
parameters too; see ``cloudsms.services.options``). Numbers are taken as text and validated by
``cloudsms.services.carrier``, so every front end gives the same one-line message for the same
mistake. ``add`` prompts for the password (hidden) when ``--password`` is not given, which keeps
it out of shell history.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

import typer

from cloudsms.cli._common import operator_name, say, state, table, with_options
from cloudsms.domain.routing import ConnectorConfig, ConnectorStatus
from cloudsms.services.audit import Audited, AuditTrail
from cloudsms.services.carrier import CarrierOperator
from cloudsms.services.options import CONNECTOR_NAME, connector_options

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


@app.command("add")
@with_options(CONNECTOR_NAME, *connector_options(create=True))
def add(ctx: typer.Context, **settings: str | None) -> None:
    """Add a connector (enabled; route rules decide which traffic it gets)."""
    a: dict[str, Any] = dict(settings)
    created = carrier(ctx).add_connector(a.pop("name"), **a)
    say(f"connector {created.name!r} added (id {created.id}, {created.host}:{created.port})")


@app.command("set")
@with_options(*connector_options(create=False))
def set_(
    ctx: typer.Context,
    name: Name,
    rename: Annotated[str | None, typer.Option(help="New connector name.")] = None,
    **settings: str | None,
) -> None:
    """Change settings; options not given are left as they are (all checked first)."""
    changed = carrier(ctx).set_connector(name, rename=rename, **settings)
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
