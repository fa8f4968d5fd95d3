"""PostgreSQL connections are pinged before use only after sitting idle (``_ping_when_idle``).

A ping is a round trip before the transaction; under load every connection comes back to the
pool and goes out again within milliseconds, so it is skipped then. These tests use the real
server: a connection the server closed while it sat in the pool is replaced without an error;
one the server closes while in use fails that one transaction, and the next gets a new one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from cloudsms.storage import engine as engines


@pytest.fixture
def pg(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, list[int]]]:
    """An engine on a fresh database and the list its pings are counted in."""
    monkeypatch.setattr(engines, "IDLE_PING_S", 0.2)
    eng = engines.make_engine(postgres_url)
    pings: list[int] = []
    real = eng.dialect.do_ping

    def counted(dbapi: Any) -> bool:
        pings.append(1)
        return real(dbapi)

    monkeypatch.setattr(eng.dialect, "do_ping", counted)
    try:
        yield eng, pings
    finally:
        eng.dispose()


def _backend(eng: Engine) -> int:
    with eng.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)


def test_a_connection_in_use_again_at_once_is_not_pinged(pg: tuple[Engine, list[int]]) -> None:
    eng, pings = pg
    first = _backend(eng)
    for _ in range(20):
        assert _backend(eng) == first  # the pooled connection, reused
    assert pings == []


def test_a_connection_closed_while_idle_is_replaced_without_an_error(
    pg: tuple[Engine, list[int]], postgres_url: str
) -> None:
    eng, pings = pg
    first = _backend(eng)
    _terminate(postgres_url, first)
    time.sleep(engines.IDLE_PING_S + 0.05)
    second = _backend(eng)  # pinged, found closed, replaced: no error
    assert second != first
    assert pings == [1]


def test_a_connection_closed_in_use_fails_once_then_the_pool_recovers(
    pg: tuple[Engine, list[int]], postgres_url: str
) -> None:
    eng, pings = pg
    first = _backend(eng)
    _terminate(postgres_url, first)  # closed behind the pool's back, not idle long enough
    with pytest.raises(OperationalError):
        _backend(eng)
    assert _backend(eng) != first  # the disconnect emptied the pool: a new connection
    assert pings == []
