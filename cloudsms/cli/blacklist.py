"""``cloudsms blacklist …``: numbers never sent to (Intercept), platform-wide or per customer."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudsms.cli._common import say, state, table

app = typer.Typer(help="Blacklist: numbers answered with Intercept, platform-wide or per customer.")

Number = Annotated[str, typer.Argument(help="Calling code + number, digits, e.g. 85261234567.")]
Customer = Annotated[
    str | None, typer.Option("--customer", help="Only for this customer (default: platform-wide).")
]


@app.command("add")
def add(
    ctx: typer.Context,
    number: Number,
    customer: Customer = None,
    note: Annotated[str | None, typer.Option(help="Why (for operators).")] = None,
) -> None:
    """Blacklist a number."""
    digits = state(ctx).operator.blacklist_add(number, customer, note)
    say(f"{digits} blacklisted " + (f"for {customer!r}" if customer else "platform-wide"))


@app.command("remove")
def remove(ctx: typer.Context, number: Number, customer: Customer = None) -> None:
    """Remove a number from the platform's (or a customer's) blacklist."""
    digits = state(ctx).operator.blacklist_remove(number, customer)
    say(
        f"{digits} removed from the "
        + (f"blacklist of {customer!r}" if customer else "platform blacklist")
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's entries.")] = None,
) -> None:
    """Blacklisted numbers."""
    table(
        "Blacklist",
        ["number", "scope", "note"],
        (
            [e.number, e.customer or "platform-wide", e.note]
            for e in state(ctx).operator.blacklist(customer)
        ),
    )
