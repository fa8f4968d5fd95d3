"""Engines for both stores: SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL``: a committed transaction survives a process
crash and a power cut. Group commit (``cloudsms.storage.writer``) amortises the fsync over many
packets, so durability costs little throughput.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from cloudsms.exceptions import ConfigError


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


#: ``scheme://user:password@`` — the password part, found even in a URL that does not parse.
_PASSWORD = re.compile(r"(?P<head>^[^:/]*://[^:/@]*:)(?P<password>[^@]*)(?=@)")


def masked_url(url: str) -> str:
    """``url`` fit for an error message or a log line: any password replaced by ``***``.

    Works on URLs SQLAlchemy cannot parse too (those are the ones error messages quote).
    """
    return _PASSWORD.sub(r"\g<head>***", url)


def describe_failure(url: str, exc: BaseException) -> str:
    """One line for a database that cannot be opened: which database, and why.

    SQLite says only "unable to open database file"; this names the file and, when that is the
    reason, its missing directory.
    """
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    reason = text[0] if text else type(orig).__name__
    if not url:
        return reason
    try:
        parsed = make_url(normalise_url(url))
    except Exception:
        return f"{masked_url(url)}: {reason}"
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.parent.is_dir():
            reason = f"directory {path.parent} does not exist"
        return f"database file {path}: {reason}"
    return f"{masked_url(url)}: {reason}"


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the pragmas and pool this project relies on."""
    given, url = url, normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"not a database URL: {masked_url(given)!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
            # cached_statements: the hot plain-SQL statements come in a few shapes each
            # (StoreBase._run_rows / in_list); keep them all parsed.
            connect_args={"check_same_thread": False, "timeout": 30, "cached_statements": 512},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, **kwargs)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


#: A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
IDLE_PING_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle, not on every checkout.

    Why (issue 14): SQLAlchemy's ``pool_pre_ping`` is a round trip to the server before every
    transaction; under load, where a connection goes back to the pool and out again within
    milliseconds, that was 12 % of the API's group-commit time on PostgreSQL (py-spy under the
    harness: each accept transaction is about ten round trips). A connection that was idle may
    have been closed by the server (a restart, an idle timeout, a proxy) and is pinged; one
    that a server restart breaks while it is in use fails its transaction, the failure is a
    disconnect, and SQLAlchemy then discards every connection of the pool: one transaction per
    process is refused during a restart (its packet answered DB_not_find, its batch retried by
    the worker), as those in flight at the restart were already.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection closed while idle: {exc}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
