"""``cloudsms admin …``: tokens of the admin REST API and the operator console.

``token create`` prints the token alone on stdout (confirmations go to stderr), once: only its
SHA-256 is stored, so a lost token is revoked and replaced, never recovered.

    TOKEN=$(cloudsms admin token create alice --role admin)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:1816/api/v1/customers
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from cloudsms.admin import auth
from cloudsms.cli._common import fail, operator_name, say, state, table
from cloudsms.services import validation as v
from cloudsms.services.audit import AuditTrail
from cloudsms.storage.admin_ops import ROLES
from cloudsms.storage.interfaces import AdminStore

app = typer.Typer(help="Admin API and console: tokens.")
token_app = typer.Typer(help="Bearer tokens for the admin API and the console login.")
app.add_typer(token_app, name="token", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Token name (who holds it, e.g. alice or grafana).")]


def _store(ctx: typer.Context) -> AdminStore:
    return state(ctx).store


@token_app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    role: Annotated[str, typer.Option(help="admin (read and change) or readonly.")] = "admin",
) -> None:
    """Create a token and print it (shown once: store it in a password manager)."""
    if role not in ROLES:
        fail(f"role {role!r}: one of {', '.join(ROLES)}", 2)
    store = _store(ctx)
    token = auth.new_token()
    store.create_admin_token(v.check_name(name, "token name"), auth.digest(token), role)
    AuditTrail(store, operator_name()).record("tokens.create", name, {"role": role})
    say(f"created {role} token {name!r}; it is shown once:")
    typer.echo(token)


@token_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Tokens with their role and last use (never the tokens themselves)."""
    table(
        "Admin tokens",
        ["name", "role", "enabled", "created", "last used"],
        (
            [t.name, t.role, t.enabled, _when(t.created_ms), _when(t.last_used_ms)]
            for t in _store(ctx).list_admin_tokens()
        ),
    )


@token_app.command("revoke")
def revoke(ctx: typer.Context, name: Name) -> None:
    """Disable a token: its API calls and console sessions stop at once."""
    store = _store(ctx)
    store.revoke_admin_token(name)
    AuditTrail(store, operator_name()).record("tokens.revoke", name, None)
    say(f"token {name!r} revoked")


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
