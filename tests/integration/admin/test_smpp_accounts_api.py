"""SMPP accounts through the admin REST API and the CLI: the same inputs, hashed passwords."""

from __future__ import annotations

from pathlib import Path

from conftest import Admin, ok
from sqlalchemy import select
from typer.testing import CliRunner

from cloudsms.cli import app
from cloudsms.domain.smpp_accounts import verify_password
from cloudsms.storage import tables


def test_smpp_accounts_through_the_admin_api(admin: Admin) -> None:
    api = admin.api
    ok(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    created = ok(
        api.post(
            "/api/v1/customers/acme/smpp-accounts",
            json={"system_id": "acme1", "password": "s3cret", "route": "OTP", "binds": "trx,tx",
                  "max_sessions": 3, "throughput": 50},
        ),
        201,
    )  # fmt: skip
    assert created["binds"] == ["trx", "tx"] and created["max_sessions"] == 3
    assert "password_hash" not in created and "password" not in created
    with admin.store.engine.connect() as conn:
        stored = conn.execute(select(tables.smpp_accounts.c.password_hash)).scalar_one()
    assert "s3cret" not in stored and verify_password("s3cret", stored)

    refused = api.post(
        "/api/v1/customers/acme/smpp-accounts",
        json={"system_id": "x" * 16, "password": "toolongpw", "route": "OTP"},
    )
    assert refused.status_code == 400 and "system_id" in refused.json()["error"]
    taken = api.post(
        "/api/v1/customers/acme/smpp-accounts",
        json={"system_id": "acme1", "password": "pw", "route": "OTP"},
    )
    assert taken.status_code == 409

    ok(api.patch("/api/v1/smpp-accounts/acme1", json={"password": "n3w", "enabled": False}))
    listed = ok(api.get("/api/v1/smpp-accounts", params={"customer": "acme"}))
    assert [(a["system_id"], a["enabled"]) for a in listed] == [("acme1", False)]
    audit = ok(api.get("/api/v1/audit", params={"target": "acme1"}))
    assert audit and all("n3w" not in str(e["detail"]) for e in audit)
    ok(api.delete("/api/v1/smpp-accounts/acme1"))
    assert ok(api.get("/api/v1/smpp-accounts")) == []


def test_smpp_accounts_from_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--database-url", url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("db", "upgrade")
    run("customers", "create", "acme", "--currency", "HKD")
    out = run(
        "smpp-account", "add", "acme", "acme1", "--password", "s3cret", "--route", "OTP",
        "--binds", "trx,tx", "--max-sessions", "4", "--throughput", "100",
    )  # fmt: skip
    assert "'acme1' added" in out and "4 sessions" in out and "100 segments/s" in out
    assert "acme1" in run("smpp-account", "list")
    bad = runner.invoke(
        app,
        ["--database-url", url, "smpp-account", "add", "acme", "b", "--password", "p",
         "--route", "OTP", "--binds", "rx,bogus"],
    )  # fmt: skip
    assert bad.exit_code != 0 and "binds" in bad.output
    run("smpp-account", "password", "acme1", "--password", "other")
    run("smpp-account", "disable", "acme1")
    run("smpp-account", "remove", "acme1")
    assert "acme1" not in run("smpp-account", "list")
