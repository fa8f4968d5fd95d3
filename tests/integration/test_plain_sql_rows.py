"""``plain_sql.run_rows`` on both engines: a batch of rows in one statement, the rows it changed.

PostgreSQL runs ``UPDATE … FROM (VALUES {rows}) AS v`` as one statement with an array per
column (``unnest``); the columns keep their types (an integer compared with an integer column
without a cast, a NULL in a text column), and the count is the rows the statement changed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc

from cloudsms.storage.engine import make_engine
from cloudsms.storage.plain_sql import fetch_rows, run, run_many, run_rows

_UPDATE = (
    "UPDATE parts SET stat = CAST(v.column1 AS VARCHAR), done_ms = CAST(v.column2 AS BIGINT)"
    " FROM (VALUES {rows}) AS v WHERE parts.uid = v.column3 AND parts.seq = v.column4"
)


def test_an_update_from_values_changes_its_rows_and_counts_them(database_url: str) -> None:
    engine = make_engine(database_url)
    dialect = engine.dialect.name
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE parts (uid VARCHAR(32), seq INTEGER, stat VARCHAR(8),"
                    " done_ms BIGINT)"
                )
            )
            for uid, seq in [("a", 1), ("a", 2), ("b", 1)]:
                conn.execute(
                    text("INSERT INTO parts (uid, seq) VALUES (:u, :s)"), {"u": uid, "s": seq}
                )
        rows = [
            ("DELIVRD", 1_796_000_000_000, "a", 2),
            (None, 5, "b", 1),
            ("UNDELIV", 7, "nobody", 1),  # matches no row: not counted
        ]
        with engine.begin() as conn:
            assert run_rows(conn, dialect, _UPDATE, rows) == 2
        with engine.connect() as conn:
            got = conn.execute(text("SELECT uid, seq, stat, done_ms FROM parts ORDER BY uid, seq"))
            assert [tuple(r) for r in got] == [
                ("a", 1, None, None),
                ("a", 2, "DELIVRD", 1_796_000_000_000),
                ("b", 1, None, 5),
            ]
        with engine.begin() as conn:
            assert run_rows(conn, dialect, _UPDATE, [(None, None, "a", 1)]) == 1  # all NULL
            assert run_rows(conn, dialect, _UPDATE, []) == 0
    finally:
        engine.dispose()


def test_driver_calls_share_the_transaction_and_raise_sqlalchemy_errors(
    database_url: str,
) -> None:
    """The batch calls run on the driver's cursor: inside the transaction SQLAlchemy began (a
    rollback takes their rows back), and a refused row is SQLAlchemy's IntegrityError, which
    the store turns into BatchRejected."""
    engine = make_engine(database_url)
    dialect = engine.dialect.name
    insert = "INSERT INTO keys (k, n) VALUES (?, ?)"
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE keys (k VARCHAR(8) PRIMARY KEY, n INTEGER)"))
        with pytest.raises(sa_exc.IntegrityError), engine.begin() as conn:
            run_many(conn, dialect, insert, [("a", 1), ("b", 2)])
            run_many(conn, dialect, insert, [("c", 3), ("a", 4)])  # "a" again
        with engine.begin() as conn:  # the failed transaction left nothing, and the pool works
            assert conn.execute(text("SELECT count(*) FROM keys")).scalar_one() == 0
            run_many(conn, dialect, insert, [("a", 1), ("b", 2)])
            got = fetch_rows(
                conn, dialect,
                "UPDATE keys SET n = n + 10 FROM (VALUES {rows}) AS v"
                " WHERE keys.k = CAST(v.column1 AS VARCHAR) RETURNING keys.k, keys.n",
                [("a",), ("zz",)],
            )  # fmt: skip
            assert [tuple(r) for r in got] == [("a", 11)]
        with pytest.raises(sa_exc.DBAPIError), engine.begin() as conn:
            run_rows(conn, dialect, "UPDATE no_such_table SET n = 1 FROM (VALUES {rows}) AS v",
                     [(1,)])  # fmt: skip
    finally:
        engine.dispose()


def test_a_single_statement_gives_named_rows_counts_and_sqlalchemy_errors(
    database_url: str,
) -> None:
    """``run`` on the driver's cursor: rows by column name and by position, the count of an
    UPDATE, RETURNING, the result calls the store uses, and the driver's errors as SQLAlchemy's
    (a refused row is IntegrityError; the rollback takes the statement back)."""
    engine = make_engine(database_url)
    dialect = engine.dialect.name
    seen: list[str] = []
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE keys (k VARCHAR(8) PRIMARY KEY, n INTEGER)"))
            run_many(conn, dialect, "INSERT INTO keys (k, n) VALUES (?, ?)", [("a", 1), ("b", 2)])
        event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))
        with engine.begin() as conn:
            rows = run(conn, dialect, "SELECT k, n, n * 2 FROM keys WHERE n >= ? ORDER BY k", (1,))
            assert [(r.k, r.n, r[2]) for r in rows] == [("a", 1, 2), ("b", 2, 4)]
            assert [tuple(r) for r in rows.all()] == [("a", 1, 2), ("b", 2, 4)]
            first = run(conn, dialect, "SELECT k, n FROM keys ORDER BY k").first()
            assert (first.k, first.n) == ("a", 1)
            assert run(conn, dialect, "SELECT n FROM keys WHERE k = ?", ("zz",)).first() is None
            assert run(conn, dialect, "SELECT n FROM keys WHERE k = ?", ("zz",)).scalar() is None
            assert run(conn, dialect, "SELECT count(*) FROM keys").scalar_one() == 2
            with pytest.raises(sa_exc.MultipleResultsFound):
                run(conn, dialect, "SELECT k FROM keys").one_or_none()
            with pytest.raises(sa_exc.NoResultFound):
                run(conn, dialect, "SELECT k FROM keys WHERE k = 'zz'").scalar_one()
            assert run(conn, dialect, "UPDATE keys SET n = n + 1 WHERE n >= ?", (1,)).rowcount == 2
            [(k, n)] = run(
                conn, dialect, "UPDATE keys SET n = 0 WHERE k = ? RETURNING k, n", ("b",)
            )
            assert (k, n) == ("b", 0)
        assert seen == ["SELECT"] * 7 + ["UPDATE", "UPDATE"]  # the listeners see every statement
        with pytest.raises(sa_exc.IntegrityError), engine.begin() as conn:
            run(conn, dialect, "UPDATE keys SET n = 9 WHERE k = 'a'")
            run(conn, dialect, "INSERT INTO keys (k, n) VALUES (?, ?)", ("b", 5))  # "b" again
        with engine.connect() as conn:
            assert run(conn, dialect, "SELECT n FROM keys WHERE k = 'a'").scalar_one() == 2
    finally:
        engine.dispose()
