"""The shared base of the store: one engine, the dialect, and the clock.

The store is a set of named operations grouped by concern, each group a mixin over this base:
``messages.MessageOps`` (the accept path and message queries) and ``config_ops.ConfigOps``
(operator configuration and the snapshot the API reads). ``store.Store`` combines them. Only the
storage layer writes SQL or maps rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from cloudsms.exceptions import StoreError

DATABASE_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error)
#: Errors caused by the data (constraint, bad value): deterministic, not the database's health.
DATA_ERRORS = (sa_exc.IntegrityError, sa_exc.DataError, psycopg.IntegrityError, psycopg.DataError)


class BatchRejected(StoreError):
    """The database refused the batch's data (a constraint or a value): nothing was written."""


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

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[Connection]:
        """A connection (in a write transaction when ``write``); database errors → StoreError.

        SQLite writes start with ``BEGIN IMMEDIATE``: taking the write lock up front makes a busy
        database wait (``busy_timeout``) instead of failing at once when a read lock would have
        to be upgraded while another connection writes.
        """
        try:
            with self.engine.begin() if write else self.engine.connect() as conn:
                if write and self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except StoreError:
            raise
        except DATABASE_ERRORS as exc:
            raise translate_error(exc, "database error") from exc
