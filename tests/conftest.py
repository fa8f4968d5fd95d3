"""Shared fixtures: real databases.

``database_url`` runs a test on both engines: a fresh SQLite file and a fresh PostgreSQL database
(created on the server every machine of this kind runs at 127.0.0.1:5432, dropped afterwards).
Set CLOUDSMS_TEST_PG_URL to point at another server, or to "" to skip the PostgreSQL variants.
Every other CLOUDSMS_* variable is removed (the platform's settings), except CLOUDSMS_CHROMIUM
(the browser tests' Chromium).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cloudsms.storage.store import Store

PG_ADMIN_URL = os.environ.get("CLOUDSMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Variables for the test harness itself, not settings of the platform: kept.
HARNESS_VARIABLES = {"CLOUDSMS_TEST_PG_URL", "CLOUDSMS_CHROMIUM"}

# The platform under test must not pick up a developer's CLOUDSMS_* settings.
for _name in list(os.environ):
    if _name.startswith("CLOUDSMS_") and _name not in HARNESS_VARIABLES:
        del os.environ[_name]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cloudsms.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("PostgreSQL disabled by CLOUDSMS_TEST_PG_URL")
    import psycopg

    name = f"cloudsms_t_{secrets.token_hex(6)}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on each engine (no schema yet)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


# --- store fixtures (storage layer) ---------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated Store on a fresh database, on each engine."""
    from cloudsms.storage.store import Store  # here, so unit tests never import the store

    s = Store.open(database_url)
    try:
        yield s
    finally:
        s.close()


CustomerFactory = Callable[..., int]


@pytest.fixture
def add_customer(store: Store) -> CustomerFactory:
    """Insert a customer row straight into the schema (no ConfigOps); returns its id.

    ``add_customer(balance_micros=1_000_000, credit_limit_micros=0, currency="HKD")``; it has
    a callback URL (nothing listens there) unless ``callback_url=None``.
    """
    from cloudsms.storage import tables

    counter = iter(range(1, 1_000_000))

    def add(
        *,
        balance_micros: int = 0,
        credit_limit_micros: int = 0,
        currency: str = "HKD",
        callback_url: str | None = "http://127.0.0.1:9/dr",
    ) -> int:
        n = next(counter)
        with store.engine.begin() as conn:
            result = conn.execute(
                tables.customers.insert().values(
                    name=f"customer-{n}",
                    auth_key=f"{n:0128d}",
                    enabled=True,
                    currency=currency,
                    balance_micros=balance_micros,
                    credit_limit_micros=credit_limit_micros,
                    report_intermediate=False,
                    callback_url=callback_url,
                    created_ms=0,
                    updated_ms=0,
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None
            return int(pk[0])

    return add


# --- the running platform (uvicorn on 127.0.0.1), shared by integration and acceptance tests ----

from platform_fixtures import RunningServer, http, make_server  # noqa: E402, F401
