"""``cloudsms routes …``: the ROUTE_IDs customers send, and who may use which."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudsms.cli._common import say, state, table

app = typer.Typer(help="Routes: the ROUTE_IDs customers send, and grants to customers.")

RouteId = Annotated[str, typer.Argument(help="The ROUTE_ID customers send.")]
Customer = Annotated[str, typer.Argument(help="Customer name.")]


@app.command("create")
def create(
    ctx: typer.Context,
    route_id: RouteId,
    latin1: Annotated[
        bool, typer.Option(help="The route's carriers take Latin-1 (DCS 3).")
    ] = False,
    description: Annotated[str | None, typer.Option(help="Free text for operators.")] = None,
) -> None:
    """Create a route (grant it to customers before they can use it)."""
    route = state(ctx).operator.create_route(route_id, latin1=latin1, description=description)
    say(f"route {route.name!r} created")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All routes and the customers they are granted to."""
    table(
        "Routes",
        ["route id", "latin1", "description", "granted to"],
        ([r.name, r.latin1, r.description, r.customers] for r in state(ctx).operator.routes()),
    )


@app.command("grant")
def grant(ctx: typer.Context, route_id: RouteId, customer: Customer) -> None:
    """Let a customer send with this ROUTE_ID."""
    state(ctx).operator.grant_route(route_id, customer)
    say(f"route {route_id!r} granted to {customer!r}")


@app.command("revoke")
def revoke(ctx: typer.Context, route_id: RouteId, customer: Customer) -> None:
    """Stop a customer using this ROUTE_ID (its messages become LOCAL_REJECTED)."""
    state(ctx).operator.revoke_route(route_id, customer)
    say(f"route {route_id!r} revoked from {customer!r}")
