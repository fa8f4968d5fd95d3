"""The shared base of the store: one engine, the dialect, and the clock.

The store is a set of named operations grouped by subject, each group a mixin over this base
(``messages.MessageOps`` for the accept path, ``customer_ops.CustomerOps`` for customers, …);
``store.Store`` lists them all. Groups never inherit from each other. Only the storage layer
writes SQL or maps rows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError, IntegrityError

from cloudsms.exceptions import Conflict, StoreError
from cloudsms.storage import tables
from cloudsms.storage.plain_sql import run, run_many, run_rows
from cloudsms.storage.write_lock import SqliteWriteLock, lock_path, log_path

DATABASE_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error)
#: Errors caused by the data (constraint, bad value): deterministic, not the database's health.
DATA_ERRORS = (sa_exc.IntegrityError, sa_exc.DataError, psycopg.IntegrityError, psycopg.DataError)


class BatchRejected(StoreError):
    """The database refused the batch's data (a constraint or a value): nothing was written."""


def first_line(exc: BaseException) -> str:
    """The database's own message, first line only (no SQL, no parameters)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return "database error: " + (text.splitlines()[0] if text else type(exc).__name__)


def translate_error(exc: Exception, what: str) -> StoreError:
    """StoreError for a database error; BatchRejected when the data itself was refused."""
    if isinstance(exc, DATA_ERRORS):
        return BatchRejected(f"{what}: refused by the database: {exc}")
    return StoreError(f"{what}: {exc}")


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: "sqlite" or "postgresql": operations pick the fastest form per engine.
        self.dialect = engine.dialect.name
        #: SQLite has one writer at a time: its writers queue on this lock (threads of this
        #: process and other cloudsms processes on the same file) instead of in SQLite's busy
        #: handler, which polls with sleeps (see cloudsms.storage.write_lock).
        self._write_lock: contextlib.AbstractContextManager[object] = (
            SqliteWriteLock(lock_path(engine.url.database), log_path(engine.url.database))
            if self.dialect == "sqlite"
            else contextlib.nullcontext()
        )

    @property
    def write_lock(self) -> object:
        """The lock this store's writers queue on (a ``SqliteWriteLock`` on SQLite), for
        ``cloudsms.storage.gate.gate_for``."""
        return self._write_lock

    def _run(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        """A hot statement as plain SQL (see :mod:`cloudsms.storage.plain_sql`)."""
        return run(conn, self.dialect, sql, params)

    def _run_many(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """One statement per row, executemany (see :func:`cloudsms.storage.plain_sql.run_many`)."""
        run_many(conn, self.dialect, sql, rows)

    def _run_rows(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """A hot statement for many rows (see :func:`cloudsms.storage.plain_sql.run_rows`)."""
        return run_rows(conn, self.dialect, sql, rows)

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        self.engine.dispose()
        if isinstance(self._write_lock, SqliteWriteLock):
            self._write_lock.close()

    @contextmanager
    def _config_change(
        self, conflict: str = "the change conflicts with existing data"
    ) -> Iterator[Connection]:
        """An operator change: one transaction that bumps ``config_version`` first (so running
        servers reload within a second); duplicates become ``Conflict``, other errors
        ``StoreError`` with the database's first line."""
        try:
            with self._write_lock, self.engine.begin() as conn:
                conn.execute(
                    update(tables.config_version)
                    .where(tables.config_version.c.id == 1)
                    .values(version=tables.config_version.c.version + 1)
                )
                yield conn
        except IntegrityError as exc:
            raise Conflict(conflict) from exc
        except DBAPIError as exc:
            raise StoreError(first_line(exc)) from exc

    @contextmanager
    def _config_read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(first_line(exc)) from exc

    @contextmanager
    def _write_transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        """The write lock, a connection and a transaction on it; database errors propagate.

        SQLite writes start with ``BEGIN IMMEDIATE``: taking the write lock up front makes a busy
        database wait (``busy_timeout``) instead of failing at once when a read lock would have
        to be upgraded while another connection writes. A durable commit made while the lock's
        holder flushes after releasing it (``SqliteWriteLock.flush_after_release``, the event
        loop's gate) is written without SQLite's own flush and marked for that later flush.
        """
        lock = self._write_lock
        with lock, self.engine.connect() as conn:
            deferred = durable and isinstance(lock, SqliteWriteLock) and lock.flush_after_release
            # The setting stays on the pooled connection: put it back afterwards, so operator
            # changes (which begin their own transactions) are always flushed to disk.
            relaxed = self.dialect == "sqlite" and (deferred or not durable)
            # Set on the driver's connection: outside a transaction, and without SQLAlchemy's
            # statement machinery (four statements per transaction cost ~1 % of the API).
            driver = conn.connection.dbapi_connection if relaxed else None
            if driver is not None:
                driver.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    if self.dialect == "sqlite":
                        run(conn, "sqlite", "BEGIN IMMEDIATE")
                    elif not durable:
                        run(conn, "postgresql", "SET LOCAL synchronous_commit = off")
                    yield conn
                if deferred:
                    assert isinstance(lock, SqliteWriteLock)
                    lock.unflushed = True
            finally:
                if driver is not None:
                    driver.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _connect(self, *, write: bool, durable: bool = True) -> Iterator[Connection]:
        """A connection (in a write transaction when ``write``); database errors → StoreError.

        ``durable=False`` is for writes that nobody outside is told about and that are safe to
        redo: claims, leases of reports, report outcomes. They commit without waiting for the
        disk (SQLite WAL ``synchronous=NORMAL``, PostgreSQL ``synchronous_commit=off``) — a
        process crash loses none of them, a power cut may lose the last ones (a claim is then
        claimed again, a report pushed again: at least once), and the next durable commit makes
        them durable too (the log is written in order). What the platform acknowledges to
        someone — an accepted packet, a stored receipt — is always ``durable``. Why: a disk
        flush here costs ~3 ms, more than the work of a whole batch (docs/decisions.md).
        """
        try:
            if not write:
                with self.engine.connect() as conn:
                    yield conn
                return
            with self._write_transaction(durable=durable) as conn:
                yield conn
        except StoreError:
            raise
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "database error") from exc
