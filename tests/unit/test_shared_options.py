"""The admin API and the CLI take the same inputs for the same action, with the same help.

Both front ends build their parameters from ``cloudsms.services.options``; this reads what each
one really exposes (the admin operation table, the Click commands Typer builds) and compares
them, so a parameter added on one side only, or a help text written twice, fails here.
"""

from __future__ import annotations

from typing import Any

import click
import pytest
import typer

from cloudsms.admin.operations import BY_ID
from cloudsms.cli import app

#: admin operation id → (CLI command path, the CLI's positional arguments that are path
#: segments of the admin operation, and so not among its parameters).
PAIRS: dict[str, tuple[str, frozenset[str]]] = {
    "customers.create": ("customers create", frozenset()),
    "customers.top_up": ("customers top-up", frozenset({"name"})),
    "customers.adjust": ("customers adjust", frozenset({"name"})),
    "customers.whitelist_add": ("customers whitelist add", frozenset({"name"})),
    "customers.whitelist_remove": ("customers whitelist remove", frozenset({"name"})),
    "prices.create": ("prices create-list", frozenset()),
    "prices.set": ("prices set", frozenset({"price_list", "prefix"})),
    "routes.create": ("routes create", frozenset()),
    "routes.grant": ("routes grant", frozenset({"route_id"})),
    "routes.rule_add": ("routes rules add", frozenset({"route_id"})),
    "routes.rule_remove": ("routes rules remove", frozenset({"route_id"})),
    "connectors.create": ("connectors add", frozenset()),
    "blacklist.add": ("blacklist add", frozenset()),
    "blacklist.remove": ("blacklist remove", frozenset()),
    "blacklist.list": ("blacklist list", frozenset()),
    "policies.set": ("policies set", frozenset({"country_code"})),
    "opt_outs.add": ("optout add", frozenset({"customer"})),
    "opt_outs.remove": ("optout remove", frozenset({"customer"})),
    "smpp_accounts.create": ("smpp-account add", frozenset({"customer"})),
    "inbound_numbers.create": ("inbound-number add", frozenset()),
    "inbound_numbers.list": ("inbound-number list", frozenset()),
    "inbound_numbers.remove": ("inbound-number remove", frozenset()),
    "inbound_messages.list": ("inbound list", frozenset()),
    "customers.set_mo_url": ("customers set-mo-url", frozenset({"name"})),
    "registrations.add": ("templates add", frozenset()),
    "registrations.approve": ("senders approve", frozenset({"id"})),
    "registrations.reject": ("signatures reject", frozenset({"id"})),
    "registrations.list": ("templates list", frozenset()),
}
#: Parameters whose CLI help is worded per command group (the registered text is "The template."
#: under ``templates``).
OWN_HELP = {("registrations.add", "text")}


def cli_params(path: str) -> dict[str, click.Parameter]:
    command: Any = typer.main.get_command(app)
    for word in path.split():
        command = command.commands[word]
    return {p.name: p for p in command.params if p.name and p.name != "help"}


@pytest.mark.parametrize("op_id", sorted(PAIRS))
def test_both_front_ends_take_the_same_inputs(op_id: str) -> None:
    path, segments = PAIRS[op_id]
    cli = {name: p for name, p in cli_params(path).items() if name not in segments}
    admin = {p.name: p for p in BY_ID[op_id].params}
    assert sorted(cli) == sorted(admin)
    for name, param in admin.items():
        if (op_id, name) in OWN_HELP:
            continue
        assert getattr(cli[name], "help", None) == (param.help or None), name
        assert cli[name].required == param.required, name


def test_signatures_take_no_country() -> None:
    """Signatures are valid for every destination: the CLI has no --country for them."""
    assert "country_code" not in cli_params("signatures add")
    assert "country_code" in cli_params("senders add")
