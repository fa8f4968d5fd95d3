"""The store's hot statements as plain SQL, run through the driver.

Why: on the dispatcher's and the pusher's paths SQLAlchemy's per-execution work (cache keys, a
parameter dict per row, result metadata) cost more than the database's own work
(``bench/store_dispatch.py``: 139 → 64 µs of store time per message). The statements stay
portable SQL (SQLite ≥ 3.35 and PostgreSQL: ``RETURNING``, ``ON CONFLICT``, ``UPDATE … FROM``),
written with ``?`` placeholders; the schema stays in ``tables`` and the migrations.

Every call here (:func:`run`, :func:`run_many`, :func:`run_rows`, :func:`fetch_rows`) runs on
the driver's cursor itself, inside the transaction SQLAlchemy began on the same connection: its
execution context, result object and parameter processing cost more than the statement's own
work on the accept and dispatch paths (~3–4 % of each process under the side-by-side harness for
the batches; ~50 µs per single statement on 2026-12-07's machine, against ~5 for the driver).
Their errors are SQLAlchemy's all the same (:func:`_as_sqlalchemy`), so callers handle one kind,
and SQLAlchemy's ``before_cursor_execute`` listeners see every statement.

Batches: :func:`run_rows` puts a batch's rows in one statement (``INSERT … VALUES {rows}``,
``UPDATE … FROM (VALUES {rows}) AS v``) in power-of-two shapes (:func:`chunk_sizes`,
:func:`in_list`), so each shape is parsed once and then found in the driver's statement cache.
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc


@functools.lru_cache(maxsize=512)
def driver_sql(sql: str, dialect: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's own form for ``dialect``.

    psycopg takes ``%s`` (and a literal ``%`` doubled); sqlite3 takes ``?`` as written.
    """
    if dialect == "postgresql":
        return sql.replace("%", "%%").replace("?", "%s")
    return sql


#: Bound parameters per statement (SQLite allows 32,766; PostgreSQL 65,535).
MAX_PARAMETERS = 30_000


FROM_VALUES = " FROM (VALUES {rows}) AS v"


#: PostgreSQL type of a column of parameters, by the Python type of its values.
_COLUMN_TYPES = {bool: "boolean", int: "bigint", float: "float8", str: "text"}


def _column_type(column: Sequence[Any]) -> str:
    """The type of one column of ``run_rows`` parameters (all NULL: text, like VALUES)."""
    for value in column:
        if value is not None:
            return _COLUMN_TYPES[type(value)]
    return "text"


def json_list(values: Iterable[Any]) -> str:
    """``values`` as one JSON parameter, for ``json_array_elements_text(CAST(? AS json))``.

    Why not an array parameter (``CAST(? AS text[])``): psycopg dumps a list in Python, ~1.3 µs
    per element; orjson makes the JSON text in one C call (see :func:`_from_json`).
    """
    return orjson.dumps(list(values)).decode()


@functools.lru_cache(maxsize=128)
def _from_json(sql: str, types: tuple[str, ...]) -> str:
    """``… FROM (VALUES {rows}) AS v …`` reading the rows from one ``jsonb`` parameter:
    ``v.column1`` … are the elements of each row's array, cast to their column's type
    (psycopg's form)."""
    columns = ", ".join(f"CAST(e->>{i} AS {t}) AS column{i + 1}" for i, t in enumerate(types))
    rows = f" FROM (SELECT {columns} FROM jsonb_array_elements(CAST(? AS jsonb)) AS e) AS v"
    return driver_sql(sql.replace(FROM_VALUES, rows), "postgresql")


def chunk_sizes(total: int, most: int) -> list[int]:
    """``total`` rows as chunks of power-of-two sizes (≤ 512 and ≤ ``most``), largest first.

    A statement's text depends on its row count; with few distinct counts each shape is
    parsed once and then found in the driver's statement cache (parsing a 300-row statement
    costs more than running it).
    """
    sizes: list[int] = []
    size = 512
    while size > most:
        size //= 2
    while total > 0:
        while size > total:
            size //= 2
        sizes.append(size)
        total -= size
    return sizes


def in_list(values: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """``?, ?, …`` and its parameters for ``IN (…)``, padded to a power of two by repeating
    the last value (harmless in IN), so a statement has few shapes (see ``chunk_sizes``)."""
    if not values:
        return "NULL", ()  # IN (NULL) matches nothing, and is valid SQL
    size = 1
    while size < len(values):
        size *= 2
    return ", ".join("?" * size), (*values, *[values[-1]] * (size - len(values)))


def quoted(values: Iterable[str]) -> str:
    """``'a', 'b'``: constant strings (state names) as SQL literals, sorted, for ``IN (…)``.

    Only for the platform's own constants, rendered into statement constants at import time;
    a value with a quote in it is refused rather than escaped.
    """
    texts = sorted(str(v) for v in values)
    if not texts or any("'" in v for v in texts):
        raise ValueError(f"not a list of plain constants: {texts}")
    return ", ".join(f"'{v}'" for v in texts)


def run(conn: Connection, dialect: str, sql: str, params: Sequence[Any] = ()) -> Rows:
    """One statement with ``?`` placeholders and positional parameters, on the driver's cursor;
    its rows read at once (the store's statements return few)."""
    cursor = _execute(conn, driver_sql(sql, dialect), tuple(params))
    try:
        if cursor.description is None:
            return Rows([], cursor.rowcount)
        row_type = _row_type(tuple(column[0] for column in cursor.description))
        rows = [row_type._make(row) for row in cursor.fetchall()]
        return Rows(rows, cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(conn, exc, sql, params) from exc
    finally:
        cursor.close()


class Rows:
    """A statement's rows, with the part of SQLAlchemy's ``Result`` the store uses.

    Why not SQLAlchemy's own: ``exec_driver_sql`` and its result cost ~50 µs per statement on
    this machine (2026-12-07), ten times the driver's work for the store's small statements.
    Rows are named tuples: ``row.column``, ``row[0]`` and unpacking, as with SQLAlchemy's.
    """

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        #: Rows changed by an INSERT, UPDATE or DELETE (the driver's count).
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    fetchall = all

    def first(self) -> Any:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    def one_or_none(self) -> Any:
        """The only row, or None; more than one is an error."""
        if len(self._rows) > 1:
            raise sa_exc.MultipleResultsFound("more than one row where at most one was expected")
        return self.first()

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        """The first column of the only row; none or several is an error."""
        if len(self._rows) != 1:
            error = sa_exc.NoResultFound if not self._rows else sa_exc.MultipleResultsFound
            raise error(f"{len(self._rows)} rows where exactly one was expected")
        return self._rows[0][0]


@functools.lru_cache(maxsize=512)
def _row_type(names: tuple[str, ...]) -> Any:
    """The named-tuple type for a statement's columns (``rename``: an expression's column, e.g.
    ``count(*)``, is reached by position)."""
    return collections.namedtuple("Row", names, rename=True)


def run_many(conn: Connection, dialect: str, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """One prepared statement executed for each row (the driver's ``executemany``).

    For inserts of many rows on the accept path, where sqlite3's and psycopg's executemany of
    tuples measured fastest (``bench/store_accept.py``). No count: psycopg reports none.
    """
    if rows:
        text = driver_sql(sql, dialect)
        cursor = _cursor(conn)
        _announce(conn, cursor, text, rows, many=True)
        try:
            cursor.executemany(text, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemy(conn, exc, text, rows) from exc
        finally:
            cursor.close()


def run_rows(conn: Connection, dialect: str, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """One statement for many rows: ``{rows}`` in ``sql`` becomes ``(?, …), (?, …), …``.

    For ``INSERT … VALUES {rows}`` and ``UPDATE … FROM (VALUES {rows}) AS v`` (columns
    ``v.column1``, ``v.column2``, … on both engines; cast them where the type matters, as
    PostgreSQL types an all-NULL column as text). Why not executemany on SQLite: sqlite3
    releases and re-takes the GIL for every row, and each re-take can wait out the event loop's
    switch interval — a batch of receipts took 60 ms instead of 8. Returns the rows changed.
    """
    changed = 0
    for cursor in _run_rows(conn, dialect, sql, rows):
        changed += max(cursor.rowcount or 0, 0)
        cursor.close()
    return changed


def fetch_rows(
    conn: Connection, dialect: str, sql: str, rows: Sequence[tuple[Any, ...]]
) -> list[Any]:
    """:func:`run_rows` of a statement with ``RETURNING``: the rows it returns."""
    found: list[Any] = []
    for cursor in _run_rows(conn, dialect, sql, rows):
        found += cursor.fetchall()
        cursor.close()
    return found


def _run_rows(
    conn: Connection, dialect: str, sql: str, rows: Sequence[tuple[Any, ...]]
) -> Iterator[Any]:
    """The driver's cursor after each statement :func:`run_rows` runs (the caller closes it)."""
    if not rows:
        return
    if dialect == "postgresql" and FROM_VALUES in sql:
        # One statement per batch whatever its size: one text, so psycopg prepares it once and
        # PostgreSQL plans the join once (a VALUES list of literals was planned anew for every
        # shape; a statement per row cost the server ~40 µs each). Its rows are one JSON
        # parameter, made by orjson in one C call: as one array per column (``unnest``),
        # psycopg's array dumper, in Python, cost ~12 µs per row of 11 columns (727 µs of
        # client CPU for a 50-row statement, against 121 as JSON; 2026-12-07), ~10 % of the
        # worker's CPU on PostgreSQL. ``jsonb``, parsed once: with ``json`` every ``->>``
        # parses the row again (the server's time for those 50 rows: 268 µs as arrays, 252 as
        # jsonb, 732 as json).
        types = tuple(_column_type(column) for column in zip(*rows, strict=True))
        yield _execute(conn, _from_json(sql, types), (orjson.dumps(rows).decode(),))
        return
    width = len(rows[0])
    start = 0
    for size in chunk_sizes(len(rows), max(1, MAX_PARAMETERS // width)):
        chunk = rows[start : start + size]
        start += size
        params = tuple(itertools.chain.from_iterable(chunk))  # flattened in C, not a genexpr
        yield _execute(conn, _shaped(sql, dialect, width, size), params)


def _cursor(conn: Connection) -> Any:
    """A cursor of the driver's connection under ``conn`` (in the transaction ``conn`` began)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _execute(conn: Connection, text: str, params: tuple[Any, ...]) -> Any:
    """One statement on the driver's cursor; the cursor (rowcount, rows to fetch)."""
    cursor = _cursor(conn)
    _announce(conn, cursor, text, params, many=False)
    try:
        cursor.execute(text, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise _as_sqlalchemy(conn, exc, text, params) from exc
    return cursor


def _announce(conn: Connection, cursor: Any, text: str, params: Any, *, many: bool) -> None:
    """SQLAlchemy's ``before_cursor_execute`` listeners see these statements too (statement
    counts in tests and benchmarks): an empty listener list costs one truth test."""
    listeners = conn.dispatch.before_cursor_execute
    if listeners:
        listeners(conn, cursor, text, params, None, many)


def _as_sqlalchemy(conn: Connection, exc: Any, text: str, params: Any) -> Exception:
    """The driver's error as ``exec_driver_sql`` raises it (``IntegrityError``,
    ``OperationalError``, …); on a lost connection, ``conn`` is invalidated and the pool
    replaced, as SQLAlchemy does, so the next transaction starts on a new connection."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
    if lost:
        conn.invalidate(exc)
        conn.engine.dispose(close=False)
    error: Exception = sa_exc.DBAPIError.instance(
        text, params, exc, dialect.loaded_dbapi.Error,
        connection_invalidated=lost, dialect=dialect,
    )  # fmt: skip
    return error


@functools.lru_cache(maxsize=256)
def _shaped(sql: str, dialect: str, width: int, size: int) -> str:
    """``sql`` with ``{rows}`` as ``size`` rows of ``width`` placeholders, in the driver's form:
    built once per shape (a 512-row statement is tens of kilobytes of text)."""
    one = "(" + ", ".join("?" * width) + ")"
    return driver_sql(sql.replace("{rows}", ", ".join([one] * size)), dialect)
