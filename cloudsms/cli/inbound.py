"""``cloudsms inbound-number …``, ``cloudsms inbound list`` and ``cloudsms simulator mo``.

Inbound numbers and the list of inbound messages work on the database, like every operator
command. ``simulator mo`` asks the *running* platform (its admin API, with an admin token) to
have its built-in SMSC simulator send an inbound message, so the whole loop — carrier MO,
storage, routing, SMS_PUSH_MO — can be watched with ``make run``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer

from cloudsms.cli._common import fail, say, state, table, with_options
from cloudsms.domain.timefmt import format_uip_time
from cloudsms.services.options import (
    INBOUND_LIST,
    INBOUND_NUMBER_ADD,
    INBOUND_NUMBER_KEY,
    SIMULATOR_MO,
    Option,
)

numbers_app = typer.Typer(help="Long numbers and short codes of customers: add, list, remove.")
messages_app = typer.Typer(help="Inbound messages (MO) the platform received.")
simulator_app = typer.Typer(help="The built-in SMSC simulator of a running platform.")

_CUSTOMER_FILTER = Option("customer", help="Only this customer's numbers.")


@numbers_app.command("add")
@with_options(*INBOUND_NUMBER_ADD)
def add(ctx: typer.Context, *, number: str, keyword: str | None, customer: str) -> None:
    """Inbound messages to NUMBER (starting with --keyword, if given) go to --customer."""
    added = state(ctx).operator.add_inbound_number(number, customer=customer, keyword=keyword)
    what = f" keyword {added.keyword!r}" if added.keyword else ""
    say(f"inbound number {added.number}{what} assigned to {customer!r}")


@numbers_app.command("list")
@with_options(_CUSTOMER_FILTER)
def list_numbers(ctx: typer.Context, *, customer: str | None) -> None:
    """Inbound numbers and the customers they belong to."""
    table(
        "Inbound numbers",
        ["number", "keyword", "customer"],
        (
            [n.number, n.keyword or "(any)", n.customer]
            for n in state(ctx).operator.inbound_numbers(customer)
        ),
    )


@numbers_app.command("remove")
@with_options(*INBOUND_NUMBER_KEY)
def remove(ctx: typer.Context, *, number: str, keyword: str | None) -> None:
    """Take a number (or one keyword on it) back; later messages to it are routed otherwise."""
    state(ctx).operator.remove_inbound_number(number, keyword)
    say(f"inbound number {number}" + (f" keyword {keyword!r}" if keyword else "") + " removed")


@messages_app.command("list")
@with_options(*INBOUND_LIST)
def list_messages(
    ctx: typer.Context, *, customer: str | None, unrouted: bool | None, limit: str | None
) -> None:
    """The latest inbound messages, newest first, with where they went and their push state."""
    import datetime as dt

    rows = state(ctx).operator.inbound_messages(
        customer, unrouted=bool(unrouted), limit=limit or 100
    )
    table(
        "Inbound messages",
        ["received (UTC+8)", "from", "to", "text", "customer", "routed by", "via", "push"],
        (
            [
                format_uip_time(dt.datetime.fromtimestamp(m.received_ms / 1000, dt.UTC)),
                m.source,
                m.destination,
                m.text if len(m.text) <= 40 else m.text[:39] + "…",
                m.customer_id or "",
                m.routed_by,
                m.channel,
                m.push_state,
            ]
            for m in rows
        ),
    )


@simulator_app.command("mo")
@with_options(*SIMULATOR_MO)
def simulator_mo(
    ctx: typer.Context,
    *,
    source: str,
    destination: str,
    text: str,
    admin_url: Annotated[
        str, typer.Option(help="The running platform's admin listener.")
    ] = "http://127.0.0.1:1816",
    token: Annotated[
        str | None,
        typer.Option(help="Admin API token (default: $CLOUDSMS_ADMIN_TOKEN).", show_default=False),
    ] = None,
) -> None:
    """Have the running platform's built-in simulator send an inbound message to it."""
    token = token or os.environ.get("CLOUDSMS_ADMIN_TOKEN")
    if not token:
        fail("an admin token is needed: --token or CLOUDSMS_ADMIN_TOKEN", 2)
    body: dict[str, Any] = {"source": source, "destination": destination, "text": text}
    try:
        resp = httpx.post(
            admin_url.rstrip("/") + "/api/v1/simulator/mo",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the admin listener at {admin_url}: {exc}")
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error") or resp.text
        except ValueError:
            detail = resp.text
        fail(f"the platform refused it (HTTP {resp.status_code}): {detail}")
    parts = resp.json().get("parts", 1)
    say(f"inbound message from {source} to {destination} sent by the simulator ({parts} part(s))")
