"""``cloudsms prices …``: price lists and the per-segment price of each destination prefix.

The inputs of ``create-list`` and ``set`` are declared with the admin API's
(``cloudsms.services.options``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cloudsms.cli._common import money, say, state, table, with_options
from cloudsms.services.options import PRICE, PRICE_LIST_CREATE
from cloudsms.services.validation import CALLING_CODES, region_of

app = typer.Typer(help="Price lists: per-segment prices by destination prefix (longest wins).")

ListName = Annotated[str, typer.Argument(help="Price list name.")]
Prefix = Annotated[str, typer.Argument(help="Calling code or longer prefix, e.g. 852 or 8526.")]


@app.command("create-list")
@with_options(*PRICE_LIST_CREATE)
def create_list(ctx: typer.Context, *, name: str, currency: str) -> None:
    """Create an empty price list."""
    plist = state(ctx).operator.create_price_list(name, currency)
    say(f"price list {plist.name!r} created ({plist.currency})")


@app.command("set")
@with_options(*PRICE)
def set_(ctx: typer.Context, price_list: ListName, prefix: Prefix, *, amount: str) -> None:
    """Set the price per segment for a prefix (exact decimal, e.g. 0.0525)."""
    op = state(ctx).operator
    digits, micros = op.set_price(price_list, prefix, amount)
    say(f"{price_list}: {digits} costs {money(micros, op.price_list(price_list).currency)}")


@app.command("remove")
def remove(ctx: typer.Context, price_list: ListName, prefix: Prefix) -> None:
    """Remove a prefix's price (that destination becomes Unpriced_area unless a shorter matches)."""
    state(ctx).operator.remove_price(price_list, prefix)
    say(f"{price_list}: price for {prefix} removed")


@app.command("show")
def show(ctx: typer.Context, price_list: ListName) -> None:
    """Every price in a list."""
    plist = state(ctx).operator.price_list(price_list)
    table(
        f"Price list {plist.name} ({plist.currency})",
        ["prefix", "region", "per segment"],
        (
            [prefix, _region(prefix), money(micros, plist.currency)]
            for prefix, micros in sorted(plist.prices.items())
        ),
    )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All price lists."""
    table(
        "Price lists",
        ["name", "currency", "prices"],
        ([p.name, p.currency, len(p.prices)] for p in state(ctx).operator.price_lists()),
    )


def _region(prefix: str) -> str:
    for n in (1, 2, 3):
        if int(prefix[:n]) in CALLING_CODES:
            return region_of(int(prefix[:n]))
    return "?"
