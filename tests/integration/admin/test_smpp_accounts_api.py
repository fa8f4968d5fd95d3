"""SMPP accounts through the admin REST API and the CLI: the same inputs, hashed passwords."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
from conftest import Admin, AdminThread, make_token, ok
from seed import seed_customer
from sqlalchemy import select
from typer.testing import CliRunner

from cloudsms.cli import app
from cloudsms.domain.smpp_accounts import verify_password
from cloudsms.services.operator import Operator
from cloudsms.smpp.pdu import BindTransceiver
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ignore(_pdu: Any) -> None:
    return None


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

    # MOs over SMPP: on by default when the account can receive, off (and refused) when not
    assert created["mo"] is True
    tx_only = {"password": "pw", "route": "OTP", "binds": "tx"}
    assert ok(api.post("/api/v1/customers/acme/smpp-accounts",
                       json={"system_id": "tx1", **tx_only}), 201)["mo"] is False  # fmt: skip
    refused = api.post("/api/v1/customers/acme/smpp-accounts",
                       json={"system_id": "tx2", "mo": True, **tx_only})  # fmt: skip
    assert refused.status_code == 400 and "rx or trx" in refused.json()["error"]
    refused = api.patch("/api/v1/smpp-accounts/tx1", json={"mo": True})
    assert refused.status_code == 400 and "cannot take MOs" in refused.json()["error"]
    ok(api.patch("/api/v1/smpp-accounts/acme1", json={"mo": False}))
    ok(api.delete("/api/v1/smpp-accounts/tx1"))

    ok(api.patch("/api/v1/smpp-accounts/acme1", json={"password": "n3w", "enabled": False}))
    listed = ok(api.get("/api/v1/smpp-accounts", params={"customer": "acme"}))
    assert [(a["system_id"], a["enabled"], a["mo"]) for a in listed] == [("acme1", False, False)]
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
    assert "MOs as deliver_sm" in out
    assert "acme1" in run("smpp-account", "list")
    assert "pushed over HTTP" in run("smpp-account", "mo", "acme1", "off")
    assert "MOs over HTTP" in run(
        "smpp-account", "add", "acme", "acme2", "--password", "pw", "--route", "OTP", "--no-mo"
    )
    db = Store.open(url)
    try:
        assert [a.mo for a in Operator(db).smpp_accounts("acme")] == [False, False]
    finally:
        db.close()
    assert "as deliver_sm" in run("smpp-account", "mo", "acme1", "on")
    no_rx = runner.invoke(
        app,
        ["--database-url", url, "smpp-account", "add", "acme", "t", "--password", "p",
         "--route", "OTP", "--binds", "tx", "--mo"],
    )  # fmt: skip
    assert no_rx.exit_code != 0 and "rx or trx" in no_rx.output
    bad_switch = runner.invoke(app, ["--database-url", url, "smpp-account", "mo", "acme1", "yes"])
    assert bad_switch.exit_code != 0 and "on or off" in bad_switch.output
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


async def test_live_sessions_are_listed_and_can_be_disconnected(
    store: Store, make_server: Any
) -> None:
    seeded = seed_customer(store.engine)
    Operator(store).add_smpp_account("acme", "acme1", password="s3cret", route=seeded.route)
    port = free_port()
    running = make_server(smpp_port=port)
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(
        lambda: EsmeLink(name="esme", on_deliver=_ignore, response_timeout_s=10, enquire_link_s=0),
        "127.0.0.1",
        port,
    )
    await link.bind(BindTransceiver(sequence_number=1, system_id="acme1", password="s3cret"))
    with AdminThread(store, smpp_sessions=running.platform.smpp) as thread:
        token = make_token(store, "alice", "admin")
        with httpx.Client(
            base_url=thread.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as api:
            sessions = ok(await asyncio.to_thread(api.get, "/api/v1/smpp-sessions"))
            assert len(sessions) == 1
            live = sessions[0]
            assert (live["system_id"], live["customer"], live["bind"]) == ("acme1", "acme", "trx")
            assert live["window_in_use"] == 0 and live["window"] == 100 and live["tls"] is False
            gone = await asyncio.to_thread(api.delete, "/api/v1/smpp-sessions/999")
            assert gone.status_code == 404
            ok(await asyncio.to_thread(api.delete, f"/api/v1/smpp-sessions/{live['id']}"))
            await asyncio.wait_for(asyncio.shield(link.closed), 5)
            assert ok(await asyncio.to_thread(api.get, "/api/v1/smpp-sessions")) == []
