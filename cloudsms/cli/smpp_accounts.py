"""``cloudsms smpp-account …``: customers' SMPP accounts for the SMPP server.

The inputs are declared with the admin API's (``cloudsms.services.options``). The password is
prompted for with hidden input when ``--password`` is not given, and stored only as a digest.
"""

from __future__ import annotations

from typing import Any

import typer

from cloudsms.cli._common import say, state, table, with_options
from cloudsms.services.options import (
    SMPP_ACCOUNT_ADD,
    SMPP_MO_SWITCH,
    SMPP_PASSWORD,
    SMPP_SYSTEM_ID,
    Option,
)

app = typer.Typer(help="SMPP accounts of customers: add, list, password, enable, remove.")

_CUSTOMER = Option("customer", required=True, argument=True, help="Customer name.")
_CUSTOMER_FILTER = Option("customer", help="Only this customer's accounts.")


@app.command("add")
@with_options(_CUSTOMER, *SMPP_ACCOUNT_ADD)
def add(ctx: typer.Context, **a: Any) -> None:
    """Give a customer an SMPP account (system_id / password) for the SMPP server."""
    customer, system_id = a.pop("customer"), a.pop("system_id")
    account = state(ctx).operator.add_smpp_account(
        customer, system_id, **{k: v for k, v in a.items() if v is not None}
    )
    say(
        f"SMPP account {account.system_id!r} added for {customer!r}"
        f" (binds {','.join(sorted(account.binds))}, {account.max_sessions} sessions,"
        f" {account.throughput} segments/s, route {account.route!r},"
        f" MOs {'as deliver_sm' if account.mo else 'over HTTP'})"
    )


@app.command("list")
@with_options(_CUSTOMER_FILTER)
def list_(ctx: typer.Context, *, customer: str | None) -> None:
    """SMPP accounts (passwords are never shown: only their digests are stored)."""
    table(
        "SMPP accounts",
        ["system_id", "customer", "binds", "sessions", "segments/s", "route", "MO", "enabled"],
        (
            [
                a.system_id,
                a.customer,
                ",".join(sorted(a.binds)),
                a.max_sessions,
                a.throughput or "no limit",
                a.route,
                "smpp" if a.mo else "http",
                "yes" if a.enabled else "no",
            ]
            for a in state(ctx).operator.smpp_accounts(customer)
        ),
    )


@app.command("password")
@with_options(SMPP_SYSTEM_ID, SMPP_PASSWORD)
def password(ctx: typer.Context, *, system_id: str, password: str) -> None:
    """Set a new password (sessions bound already stay bound)."""
    state(ctx).operator.set_smpp_password(system_id, password=password)
    say(f"password of SMPP account {system_id!r} changed")


@app.command("enable")
@with_options(SMPP_SYSTEM_ID)
def enable(ctx: typer.Context, *, system_id: str) -> None:
    """Allow binds again."""
    state(ctx).operator.set_smpp_account_enabled(system_id, True)
    say(f"SMPP account {system_id!r} enabled")


@app.command("disable")
@with_options(SMPP_SYSTEM_ID)
def disable(ctx: typer.Context, *, system_id: str) -> None:
    """Refuse new binds (ESME_RBINDFAIL); sessions bound already are closed within a second."""
    state(ctx).operator.set_smpp_account_enabled(system_id, False)
    say(f"SMPP account {system_id!r} disabled")


@app.command("mo")
@with_options(SMPP_SYSTEM_ID, SMPP_MO_SWITCH)
def mo(ctx: typer.Context, *, system_id: str, switch: str) -> None:
    """Inbound messages (MO) on this account's rx / trx sessions (on) or over HTTP (off)."""
    if switch not in SMPP_MO_SWITCH.choices:
        raise typer.BadParameter(f"on or off, not {switch!r}")
    state(ctx).operator.set_smpp_account_mo(system_id, switch == "on")
    say(
        f"SMPP account {system_id!r}: MOs stored from now on "
        + ("go out as deliver_sm on its sessions" if switch == "on" else "are pushed over HTTP")
    )


@app.command("remove")
@with_options(SMPP_SYSTEM_ID)
def remove(ctx: typer.Context, *, system_id: str) -> None:
    """Remove an account; its sessions are closed within a second."""
    state(ctx).operator.remove_smpp_account(system_id)
    say(f"SMPP account {system_id!r} removed")
