"""What every command group shares: the store, the output, and the error boundary.

The error boundary is ``CliGroup.invoke`` on the root app: every command runs inside it, so a
``CloudSMSError`` anywhere becomes one line on stderr and an exit code, never a traceback:

* 2 — the input was refused (``ConfigError``, click usage errors: a bad argument or option);
* 1 — the action failed (``NotFound``, ``Conflict``, ``StoreError``, the database unreachable).

Nothing here runs at import: the store opens on a command's first use of ``state(ctx).operator``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cloudsms.config import Settings
from cloudsms.domain.money import format_amount
from cloudsms.exceptions import CloudSMSError, ConfigError
from cloudsms.services.audit import Audited, AuditTrail
from cloudsms.services.operator import Operator
from cloudsms.services.options import Option
from cloudsms.storage.engine import describe_failure, masked_url
from cloudsms.storage.store import Store

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliGroup(typer.core.TyperGroup):
    """The root group: translates errors into one readable line and an exit code."""

    # ``ctx`` is Typer's (privately vendored) click Context, which Typer does not export.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:  # Typer's usage errors: bad option, missing argument
            where = getattr(getattr(exc, "ctx", None), "command_path", None) or ctx.command_path
            code = getattr(exc, "exit_code", EXIT_USAGE)
            fail(f"{exc.format_message()} (see '{where} --help')", code)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except CloudSMSError as exc:
            fail(str(exc), EXIT_FAILED)
        except SQLAlchemyError as exc:
            fail("database error: " + describe_failure(_store_url(ctx), exc))


def _store_url(ctx: Any) -> str:
    """The store URL the command used ("" when unknown), for naming it in an error."""
    try:
        return ctx.obj.url() if isinstance(ctx.obj, CliState) else ""
    except CloudSMSError:
        return ""


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on one line of stderr and exit with ``code``."""
    typer.echo("error: " + " ".join(message.split()), err=True)
    raise typer.Exit(code)


@dataclass
class CliState:
    """The global options, and the store opened from them on first use."""

    database_url: str | None = None
    config: Path | None = None
    _store: Store | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        return Settings.load(file=self.config, database_url=self.database_url)

    def url(self) -> str:
        return self.settings().database_url

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.url())
        return self._store

    @property
    def operator(self) -> Operator:
        """The operator services; every change is also written to the audit log."""
        actor = operator_name()
        audited: Any = Audited(
            Operator(self.store, actor=actor), AuditTrail(self.store, actor), "cli"
        )
        return cast(Operator, audited)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def state(ctx: typer.Context) -> CliState:
    """The root's CliState (a sub-app invoked on its own gets a default one)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
        root.call_on_close(root.obj.close)
    obj: CliState = root.obj
    return obj


def operator_name() -> str:
    """Who the ledger records as the actor: ``cli:<login>``."""
    import getpass

    try:
        login = getpass.getuser()
    except Exception:  # no login name in some containers
        login = "unknown"
    return f"cli:{login}"[:64]


def open_store(url: str) -> Store:
    """Open the store, refusing a database whose schema is missing or out of date."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from cloudsms.storage.migrate import alembic_config

    parsed = make_url_or_fail(url)
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (
        None,
        "",
        ":memory:",
    )
    if on_disk and not Path(parsed.database).exists():
        raise ConfigError(
            f"no database file {parsed.database}: create it with `cloudsms db upgrade`"
        )
    store = Store.open(url, migrate=False)
    try:
        head = ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
        with store.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except BaseException:
        store.close()
        raise
    if current != head:
        store.close()
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, this cloudsms needs {head}: "
            "run `cloudsms db upgrade`"
        )
    return store


def make_url_or_fail(url: str) -> Any:
    from cloudsms.storage.engine import normalise_url

    try:
        return make_url(normalise_url(url))
    except Exception as exc:
        raise ConfigError(f"not a database URL: {safe_url(url)!r}") from exc


def safe_url(url: str) -> str:
    """A URL fit to print: the password hidden (even in a URL that does not parse)."""
    return masked_url(url)


# -- output ---------------------------------------------------------------------------------


def console() -> Console:
    """Rich output on the current stdout; wide when piped, so lines stay greppable."""
    con = Console(highlight=False)
    if not con.is_terminal:
        con = Console(highlight=False, width=max(con.width, 200))
    return con


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table; cells are plain text (never rich markup: ``[S]`` is a signature)."""
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    count = 0
    for row in rows:
        out.add_row(*(Text(cell_text(cell)) for cell in row))
        count += 1
    if count:
        console().print(out)
    else:
        console().print(Text(f"{title}: none"))


def cell_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def money(micros: int, currency: str) -> str:
    return f"{format_amount(micros)} {currency}"


def say(message: str) -> None:
    """A confirmation for people, on stderr, so stdout carries only data (keys, tables)."""
    typer.echo(message, err=True)


# -- options declared once (cloudsms.services.options) ----------------------------------------

Command = Callable[..., None]


def with_options(*options: Option) -> Callable[[Command], Command]:
    """Give a command one Typer argument or option per :class:`Option`.

    The command takes them as keyword-only parameters of the same names (typed for mypy) or as
    ``**options``. Its other parameters (the context, arguments) stay first, then the declared
    positional arguments in order, then the options. Values arrive as text (flags as booleans)
    for the service to validate, each under the option's ``name`` and None when not given; a
    required secret is prompted for with hidden input, which keeps it out of shell history. The
    admin API's parameters come from the same declarations.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY

    def decorate(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True).parameters.values()
        declared = {o.name for o in options}
        params = [
            p.replace(kind=keyword)
            for p in own
            if p.kind is not p.VAR_KEYWORD and p.name not in declared
        ]
        ordered = [o for o in options if o.argument] + [o for o in options if not o.argument]
        for o in ordered:
            kind: Any = bool if o.kind == "boolean" else str
            info = _typer_param(o)
            params.append(
                inspect.Parameter(o.name, keyword, annotation=Annotated[kind, info])
                if o.required
                else inspect.Parameter(
                    o.name, keyword, annotation=Annotated[kind | None, info], default=None
                )
            )
        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        return command

    return decorate


def _typer_param(o: Option) -> Any:
    """The Typer argument or option of one :class:`Option`."""
    if o.argument:
        return typer.Argument(help=o.description, metavar=o.metavar)
    decls: tuple[str, ...] = ()
    if o.cli:
        flag = o.cli.replace("_", "-")
        decls = (f"--{flag}/--no-{flag}",) if o.kind == "boolean" else (f"--{flag}",)
    return typer.Option(
        *decls, help=o.description, prompt=o.required and o.secret, hide_input=o.secret
    )


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options a command was given (those left out are None)."""
    return {key: value for key, value in options.items() if value is not None}
