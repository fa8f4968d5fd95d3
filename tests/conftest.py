"""Shared fixtures: real databases.

``database_url`` runs a test on both engines: a fresh SQLite file and a fresh PostgreSQL database
(created on the server every machine of this kind runs at 127.0.0.1:5432, dropped afterwards).
Set CLOUDSMS_TEST_PG_URL to point at another server, or to "" to skip the PostgreSQL variants.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get(
    "CLOUDSMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

for _name in list(os.environ):
    if _name.startswith("CLOUDSMS_") and _name != "CLOUDSMS_TEST_PG_URL":
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
