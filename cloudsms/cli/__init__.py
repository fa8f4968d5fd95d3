"""The operator CLI: ``cloudsms <group> <command> …`` (Typer + rich).

Each command group lives in its own module and is registered below; importing this package
opens nothing and reads nothing. Global options pick the store:

    cloudsms --database-url sqlite:///cloudsms.db customers list
    CLOUDSMS_DATABASE_URL=postgresql://… cloudsms prices show retail

Errors print one line, ``error: …``, on stderr: exit code 2 when the input was refused (bad
argument, unknown option), 1 when the action failed (no such customer, duplicate, database down).
See ``cloudsms.cli._common``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cloudsms.cli import (
    admin,
    blacklist,
    connectors,
    customer,
    customers,
    db,
    inbound,
    opt_outs,
    policies,
    prices,
    routes,
    server,
    smpp_accounts,
)
from cloudsms.cli._common import CliGroup, CliState
from cloudsms.cli.registrations import registration_app
from cloudsms.cli.simulator import smsc_sim

__all__ = ["app", "main"]

app = typer.Typer(
    name="cloudsms",
    cls=CliGroup,
    help="CloudSMS platform: operator commands.",
    no_args_is_help=True,
    # -h as well as --help, on every command (click passes it down to sub-contexts).
    context_settings={"help_option_names": ["-h", "--help"]},
    # Never print locals in a traceback: they would include AUTH_KEYs.
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from cloudsms import __version__

        typer.echo(f"cloudsms {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="CLOUDSMS_DATABASE_URL",
            show_envvar=True,
            help="Store URL: sqlite:///FILE or postgresql://… (default: from settings).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="CLOUDSMS_CONFIG",
            show_envvar=True,
            help="TOML settings file.",
        ),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    ctx.obj = CliState(database_url=database_url, config=config)
    ctx.call_on_close(ctx.obj.close)


# -- command groups: one module each --------------------------------------------------------
_GROUPS: list[tuple[str, typer.Typer]] = [
    ("customers", customers.app),
    ("prices", prices.app),
    ("routes", routes.app),
    ("connectors", connectors.app),
    ("blacklist", blacklist.app),
    ("optout", opt_outs.app),
    ("signatures", registration_app("signature", "signature", with_country=False)),
    ("templates", registration_app("template", "template", with_country=True)),
    ("senders", registration_app("sender", "sender ID", with_country=True)),
    ("policies", policies.app),
    ("smpp-account", smpp_accounts.app),
    ("inbound-number", inbound.numbers_app),
    ("inbound", inbound.messages_app),
    ("simulator", inbound.simulator_app),
    ("db", db.app),
    ("admin", admin.app),
]
for _name, _group in _GROUPS:
    app.add_typer(_group, name=_name, no_args_is_help=True)
app.command("settings")(db.settings)
server.register(app)
customer.register(app)
app.command("smsc-sim")(smsc_sim)


def main() -> None:
    """Console-script entry point (``cloudsms``) and ``python -m cloudsms``."""
    app(prog_name="cloudsms")
