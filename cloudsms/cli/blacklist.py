"""``cloudsms blacklist …``: numbers never sent to (Intercept), platform-wide or per customer.

The inputs are declared with the admin API's (``cloudsms.services.options``).
"""

from __future__ import annotations

import typer

from cloudsms.cli._common import say, state, table, with_options
from cloudsms.services.options import BLACKLIST_ADD, BLACKLIST_KEY, BLACKLIST_LIST

app = typer.Typer(help="Blacklist: numbers answered with Intercept, platform-wide or per customer.")


@app.command("add")
@with_options(*BLACKLIST_ADD)
def add(ctx: typer.Context, *, number: str, customer: str | None, note: str | None) -> None:
    """Blacklist a number."""
    digits = state(ctx).operator.blacklist_add(number, customer, note)
    say(f"{digits} blacklisted " + (f"for {customer!r}" if customer else "platform-wide"))


@app.command("remove")
@with_options(*BLACKLIST_KEY)
def remove(ctx: typer.Context, *, number: str, customer: str | None) -> None:
    """Remove a number from the platform's (or a customer's) blacklist."""
    digits = state(ctx).operator.blacklist_remove(number, customer)
    say(
        f"{digits} removed from the "
        + (f"blacklist of {customer!r}" if customer else "platform blacklist")
    )


@app.command("list")
@with_options(*BLACKLIST_LIST)
def list_(ctx: typer.Context, *, customer: str | None) -> None:
    """Blacklisted numbers."""
    table(
        "Blacklist",
        ["number", "scope", "note"],
        (
            [e.number, e.customer or "platform-wide", e.note]
            for e in state(ctx).operator.blacklist(customer)
        ),
    )
