"""``cloudsms routes …``: the ROUTE_IDs customers send, and who may use which.

The inputs of ``create``, ``grant`` and the rules are declared with the admin API's
(``cloudsms.services.options``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from cloudsms.cli._common import given, say, state, table, with_options
from cloudsms.cli.connectors import carrier
from cloudsms.services.options import ROUTE_CREATE, ROUTE_GRANT, RULE_ADD, RULE_KEY

app = typer.Typer(help="Routes: the ROUTE_IDs customers send, and grants to customers.")

RouteId = Annotated[str, typer.Argument(help="The ROUTE_ID customers send.")]


@app.command("create")
@with_options(*ROUTE_CREATE)
def create(ctx: typer.Context, *, name: str, latin1: bool | None, description: str | None) -> None:
    """Create a route (grant it to customers before they can use it)."""
    route = state(ctx).operator.create_route(name, latin1=bool(latin1), description=description)
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
@with_options(*ROUTE_GRANT)
def grant(ctx: typer.Context, route_id: RouteId, *, customer: str) -> None:
    """Let a customer send with this ROUTE_ID."""
    state(ctx).operator.grant_route(route_id, customer)
    say(f"route {route_id!r} granted to {customer!r}")


@app.command("revoke")
@with_options(*ROUTE_GRANT)
def revoke(ctx: typer.Context, route_id: RouteId, *, customer: str) -> None:
    """Stop a customer using this ROUTE_ID (its messages become LOCAL_REJECTED)."""
    state(ctx).operator.revoke_route(route_id, customer)
    say(f"route {route_id!r} revoked from {customer!r}")


# -- route rules: which connectors serve which destinations --------------------------------

rules = typer.Typer(
    help="Route rules: destinations (by prefix) → connectors, with priority and weight."
)
app.add_typer(rules, name="rules", no_args_is_help=True)


@rules.command("add")
@with_options(*RULE_ADD)
def rules_add(ctx: typer.Context, route_id: RouteId, **options: str | None) -> None:
    """Send the route's destinations matching the prefix through a connector.

    The longest matching prefix wins; among its rules the lowest priority with a connector up
    is used, and connectors of equal priority share traffic by weight.
    """
    a = given(options)
    rule = carrier(ctx).add_rule(route_id, a.pop("connector"), **a)
    say(
        f"route {rule.route!r}: {rule.prefix or 'any destination'} → {rule.connector!r} "
        f"(priority {rule.priority}, weight {rule.weight})"
    )


@rules.command("remove")
@with_options(*RULE_KEY)
def rules_remove(
    ctx: typer.Context, route_id: RouteId, *, connector: str, prefix: str | None
) -> None:
    """Remove the rule of a route, connector and prefix."""
    carrier(ctx).remove_rule(route_id, connector, prefix=prefix)
    say(f"rule removed from route {route_id!r}")


@rules.command("list")
def rules_list(
    ctx: typer.Context,
    route_id: Annotated[str | None, typer.Argument(help="Only this route.")] = None,
) -> None:
    """Rules in the order routing reads them: longest prefix first, then priority."""
    table(
        "Route rules",
        ["route id", "prefix", "priority", "weight", "connector", "connector enabled"],
        (
            [r.route, r.prefix or "any", r.priority, r.weight, r.connector, r.connector_enabled]
            for r in carrier(ctx).rules(route_id)
        ),
    )
