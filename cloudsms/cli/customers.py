"""``cloudsms customers …``: accounts, keys, whitelists, money and per-customer settings.

``create`` and ``rotate-key`` print the AUTH_KEY alone on stdout (confirmations go to stderr), so
``KEY=$(cloudsms customers create acme --currency HKD)`` captures exactly the key. The inputs of
``create``, ``set``, ``top-up``, ``adjust`` and the whitelist are declared with the admin API's
(``cloudsms.services.options``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudsms.cli._common import EXIT_USAGE, fail, given, money, say, state, table, with_options
from cloudsms.exceptions import ConfigError
from cloudsms.services.options import (
    CUSTOMER_CREATE,
    CUSTOMER_NAME,
    CUSTOMER_SETTINGS,
    MO_URL,
    MONEY_CHANGE,
    NETWORK,
)

app = typer.Typer(help="Customers: accounts, AUTH_KEYs, whitelists, balance, settings.")
whitelist = typer.Typer(help="Source networks (IPs / CIDRs) allowed to use a customer's key.")
app.add_typer(whitelist, name="whitelist", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Customer name.")]


@app.command("create")
@with_options(CUSTOMER_NAME, *CUSTOMER_CREATE)
def create(ctx: typer.Context, **options: str | None) -> None:
    """Create a customer and print its new AUTH_KEY."""
    a = given(options)
    customer = state(ctx).operator.create_customer(a.pop("name"), **a)
    say(f"created customer {customer.name!r} (id {customer.id}, {customer.currency}); AUTH_KEY:")
    typer.echo(customer.auth_key)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """All customers with their balance and settings at a glance."""
    table(
        "Customers",
        ["name", "id", "enabled", "balance", "credit limit", "price list", "networks", "routes"],
        (
            [
                c.name,
                c.id,
                c.enabled,
                money(c.balance_micros, c.currency),
                money(c.credit_limit_micros, c.currency),
                c.price_list,
                len(c.networks) or "any",
                c.routes,
            ]
            for c in state(ctx).operator.customers()
        ),
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: Name,
    show_key: Annotated[bool, typer.Option("--show-key", help="Print the full AUTH_KEY.")] = False,
) -> None:
    """One customer: money, settings, networks, routes and recent balance changes."""
    op = state(ctx).operator
    c = op.customer(name)
    key = c.auth_key if show_key else f"{c.auth_key[:8]}… (--show-key to print)"
    table(
        f"Customer {c.name}",
        ["setting", "value"],
        [
            ("id", c.id),
            ("enabled", c.enabled),
            ("auth key", key),
            ("currency", c.currency),
            ("balance", money(c.balance_micros, c.currency)),
            ("credit limit", money(c.credit_limit_micros, c.currency)),
            ("price list", c.price_list),
            ("callback url", c.callback_url),
            ("MO url", c.mo_url or ("(the callback url)" if c.callback_url else None)),
            ("default sender", c.default_sender),
            ("client cert sha256", c.client_cert_sha256),
            ("max backlog", c.max_backlog if c.max_backlog is not None else "platform default"),
            ("report intermediate", c.report_intermediate),
            ("networks", c.networks or "any source"),
            ("routes", c.routes),
            ("created", _when(c.created_ms)),
            ("updated", _when(c.updated_ms)),
        ],
    )
    table(
        "Recent balance changes",
        ["when", "change", "balance after", "actor", "note"],
        (
            [
                _when(e.created_ms),
                money(e.delta_micros, c.currency),
                money(e.balance_after_micros, c.currency),
                e.actor,
                e.note,
            ]
            for e in op.store.ledger(c.id, limit=10)
        ),
    )


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, name: Name) -> None:
    """Replace the AUTH_KEY (the old one stops working within a second) and print the new one."""
    key = state(ctx).operator.rotate_key(name)
    say(f"new AUTH_KEY for {name!r}:")
    typer.echo(key)


@app.command("disable")
def disable(ctx: typer.Context, name: Name) -> None:
    """Refuse the customer's key (Channel_not_exist) until enabled again."""
    state(ctx).operator.set_enabled(name, False)
    say(f"customer {name!r} disabled")


@app.command("enable")
def enable(ctx: typer.Context, name: Name) -> None:
    """Accept the customer's key again."""
    state(ctx).operator.set_enabled(name, True)
    say(f"customer {name!r} enabled")


@whitelist.command("add")
@with_options(*NETWORK)
def whitelist_add(ctx: typer.Context, name: Name, *, cidr: str) -> None:
    """Allow a source address or network (v4 or v6; a single address is /32 or /128)."""
    network = state(ctx).operator.add_network(name, cidr)
    say(f"{network} whitelisted for {name!r}")


@whitelist.command("remove")
@with_options(*NETWORK)
def whitelist_remove(ctx: typer.Context, name: Name, *, cidr: str) -> None:
    """Remove a source network."""
    network = state(ctx).operator.remove_network(name, cidr)
    say(f"{network} removed from {name!r}")


@app.command("set-callback")
def set_callback(
    ctx: typer.Context, name: Name, url: Annotated[str, typer.Argument(help='URL, or "none".')]
) -> None:
    """Set the URL delivery reports are pushed to ("none" to stop pushing)."""
    state(ctx).operator.set_callback(name, url)
    say(f"callback of {name!r} set")


@app.command("set-mo-url")
@with_options(MO_URL)
def set_mo_url(ctx: typer.Context, name: Name, *, mo_url: str) -> None:
    """Set the URL inbound messages are pushed to (SMS_PUSH_MO); "none": the callback URL."""
    state(ctx).operator.set_mo_url(name, mo_url)
    say(f"MO URL of {name!r} set")


@app.command("set-callback-ca")
def set_callback_ca(
    ctx: typer.Context,
    name: Name,
    pem_file: Annotated[str, typer.Argument(help='PEM CA bundle file, or "none".')],
) -> None:
    """Verify the customer's HTTPS callback with this CA ("none": the system trust store)."""
    pem: str | None = None
    if pem_file.strip().lower() not in ("none", "-"):
        try:
            pem = Path(pem_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {pem_file}: {exc.strerror}") from exc
    state(ctx).operator.set_callback_ca(name, pem)
    say(f"callback CA of {name!r} set")


@app.command("top-up")
@with_options(*MONEY_CHANGE)
def top_up(ctx: typer.Context, name: Name, *, amount: str, note: str | None) -> None:
    """Credit a positive amount (exact decimal, e.g. 100 or 12.5) to the balance."""
    op = state(ctx).operator
    balance = op.top_up(name, amount, note)
    typer.echo(f"balance of {name}: {money(balance, op.customer(name).currency)}")


@app.command("adjust")
@with_options(*MONEY_CHANGE)
def adjust(ctx: typer.Context, name: Name, *, amount: str, note: str | None) -> None:
    """Correct the balance by any amount; write a negative one after --: adjust acme -- -5."""
    op = state(ctx).operator
    balance = op.adjust_balance(name, amount, note)
    typer.echo(f"balance of {name}: {money(balance, op.customer(name).currency)}")


@app.command("set-credit-limit")
def set_credit_limit(ctx: typer.Context, name: Name, amount: str) -> None:
    """How far below zero the balance may go (0: prepaid only)."""
    state(ctx).operator.set_credit_limit(name, amount)
    say(f"credit limit of {name!r} set")


@app.command("set")
@with_options(*CUSTOMER_SETTINGS)
def set_(ctx: typer.Context, name: Name, **settings: Any) -> None:
    """Change settings; options not given are left as they are."""
    changed = state(ctx).operator.update_settings(name, **settings)
    if not changed:
        fail("nothing to change: give at least one option (see --help)", EXIT_USAGE)
    say(f"{', '.join(changed)} of {name!r} set")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
