"""``cloudsms db upgrade`` and ``cloudsms settings``: the schema and the settings table."""

from __future__ import annotations

import typer

from cloudsms.cli._common import make_url_or_fail, safe_url, say, state, table
from cloudsms.config import Settings

app = typer.Typer(help="Database: create or upgrade the schema.")


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the schema, or bring it to this version's (safe to run repeatedly)."""
    from cloudsms.storage.engine import make_engine
    from cloudsms.storage.migrate import upgrade as run_upgrade

    url = state(ctx).url()
    make_url_or_fail(url)
    engine = make_engine(url)
    try:
        run_upgrade(engine)
    finally:
        engine.dispose()
    say(f"database {safe_url(url)} is up to date")


def settings(ctx: typer.Context) -> None:
    """Every setting: its value here, its default, its environment variable and what it does."""
    current = state(ctx).settings()
    table(
        "Settings (environment > --config file > default)",
        ["name", "value", "default", "environment", "help"],
        (
            [
                name,
                _shown(name, getattr(current, name)),
                _shown(name, default),
                f"CLOUDSMS_{name.upper()}",
                help,
            ]
            for name, default, help in Settings.describe()
        ),
    )


def _shown(name: str, value: object) -> str:
    if name == "database_url":
        return safe_url(str(value))
    return repr(value) if isinstance(value, str) else str(value)
