"""``cloudsms optout …``: customers' opt-out lists (numbers that sent STOP), answered Intercept.

The inputs are declared with the admin API's (``cloudsms.services.options``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from cloudsms.cli._common import say, state, table, with_options
from cloudsms.services.options import OPT_OUT_CUSTOMER, OPT_OUT_NUMBER

app = typer.Typer(
    help="Opt-out lists: numbers a customer may not send to (STOP), answered Intercept."
)


@app.command("add")
@with_options(OPT_OUT_CUSTOMER, *OPT_OUT_NUMBER)
def add(ctx: typer.Context, *, customer: str, number: str) -> None:
    """Put a number on a customer's opt-out list."""
    digits = state(ctx).operator.opt_out_add(customer, number)
    say(f"{digits} is on the opt-out list of {customer!r}")


@app.command("remove")
@with_options(OPT_OUT_CUSTOMER, *OPT_OUT_NUMBER)
def remove(ctx: typer.Context, *, customer: str, number: str) -> None:
    """Take a number off a customer's opt-out list (it may be sent to again)."""
    digits = state(ctx).operator.opt_out_remove(customer, number)
    say(f"{digits} removed from the opt-out list of {customer!r}")


@app.command("list")
@with_options(OPT_OUT_CUSTOMER)
def list_(ctx: typer.Context, *, customer: str) -> None:
    """A customer's opt-out list: number, how it came there, when."""
    table(
        f"Opt-out list of {customer}",
        ["number", "via", "keyword", "since"],
        (
            [o.number, o.via, o.keyword, _when(o.created_ms)]
            for o in state(ctx).operator.opt_outs(customer)
        ),
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
