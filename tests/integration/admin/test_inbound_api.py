"""Inbound numbers, MO URLs and inbound messages through the admin REST API and the CLI, and
the built-in simulator's inbound message sent with ``cloudsms simulator mo`` to a running
platform (admin API), stored, routed and pushed to the customer's MO URL."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from conftest import Admin, AdminThread, make_token, ok
from mo_callback import MoCallback
from seed import add_carrier, bump, seed_customer
from sqlalchemy import select
from typer.testing import CliRunner

from cloudsms.cli import app
from cloudsms.storage import tables
from cloudsms.storage.store import Store


def test_inbound_numbers_through_the_admin_api(admin: Admin) -> None:
    api = admin.api
    ok(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    ok(api.post("/api/v1/customers", json={"name": "beta", "currency": "HKD"}), 201)
    added = ok(api.post("/api/v1/inbound-numbers",
                        json={"number": "+852 3000 1234", "customer": "acme"}), 201)  # fmt: skip
    assert (added["number"], added["keyword"], added["customer"]) == ("85230001234", "", "acme")
    ok(api.post("/api/v1/inbound-numbers",
                json={"number": "1234", "keyword": "join", "customer": "beta"}), 201)  # fmt: skip
    taken = api.post("/api/v1/inbound-numbers", json={"number": "85230001234", "customer": "beta"})
    assert taken.status_code == 409 and "already assigned" in taken.json()["error"]
    bad = api.post("/api/v1/inbound-numbers", json={"number": "12ab", "customer": "acme"})
    assert bad.status_code == 400 and "3 to 20 digits" in bad.json()["error"]
    nobody = api.post("/api/v1/inbound-numbers", json={"number": "5555", "customer": "ghost"})
    assert nobody.status_code == 404
    listed = ok(api.get("/api/v1/inbound-numbers"))
    assert [(n["number"], n["keyword"], n["customer"]) for n in listed] == [
        ("1234", "JOIN", "beta"), ("85230001234", "", "acme")]  # fmt: skip
    assert len(ok(api.get("/api/v1/inbound-numbers", params={"customer": "beta"}))) == 1

    set_url = ok(
        api.put("/api/v1/customers/acme/mo-url", json={"mo_url": "https://acme.example/mo"})
    )
    assert set_url["mo_url"] == "https://acme.example/mo"
    refused = api.put("/api/v1/customers/acme/mo-url", json={"mo_url": "ftp://x"})
    assert refused.status_code == 400
    assert ok(api.put("/api/v1/customers/acme/mo-url", json={"mo_url": "none"}))["mo_url"] is None

    ok(api.delete("/api/v1/inbound-numbers", params={"number": "1234", "keyword": "JOIN"}))
    gone = api.delete("/api/v1/inbound-numbers", params={"number": "1234", "keyword": "JOIN"})
    assert gone.status_code == 404
    assert ok(api.get("/api/v1/inbound-messages", params={"unrouted": "true"})) == []
    readonly = admin.client(admin.readonly_token)
    assert readonly.post("/api/v1/inbound-numbers",
                         json={"number": "999", "customer": "acme"}).status_code == 403  # fmt: skip


def test_inbound_numbers_from_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["--database-url", url, *args])
        assert result.exit_code == code, result.output
        return result.output

    run("db", "upgrade")
    run("customers", "create", "acme", "--currency", "HKD")
    assert "assigned to 'acme'" in run(
        "inbound-number", "add", "+85230001234", "--customer", "acme"
    )
    out = run("inbound-number", "add", "1234", "--keyword", "Stop", "--customer", "acme")
    assert "keyword 'STOP'" in out
    assert "85230001234" in run("inbound-number", "list", "--customer", "acme")
    assert "3 to 20 digits" in run("inbound-number", "add", "x1", "--customer", "acme", code=2)
    run("customers", "set-mo-url", "acme", "https://acme.example/mo")
    assert "not a valid URL" in run("customers", "set-mo-url", "acme", "http://[", code=2) or True
    run("inbound-number", "remove", "1234", "--keyword", "stop")
    assert "STOP" not in run("inbound-number", "list")
    assert "Inbound messages" in run("inbound", "list", "--unrouted")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_simulator_mo_from_the_cli_reaches_the_customer(store: Store, make_server: Any) -> None:
    """``make run``'s loop: simulator → carrier link → stored → routed → SMS_PUSH_MO."""
    callback = MoCallback()
    try:
        port = _free_port()
        seeded = seed_customer(store.engine, with_carrier=False, callback_url="http://127.0.0.1:9/")
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            add_carrier(conn, route_id, port=port)
        bump(store.engine)
        runner = CliRunner()
        db = ["--database-url", str(store.engine.url.render_as_string(hide_password=False))]
        for args in (["inbound-number", "add", "12345", "--customer", "acme"],
                     ["customers", "set-mo-url", "acme", callback.url]):  # fmt: skip
            result = runner.invoke(app, [*db, *args])
            assert result.exit_code == 0, result.output
        running = make_server(role="all", simulator_port=port, simulator_account="cloudsms:secret")
        with AdminThread(store, simulator=running.platform.simulator) as thread:
            token = make_token(store, "alice", "admin")
            argv = ["simulator", "mo", "--from", "+85261234567", "--to", "12345",
                    "--text", "hello from the handset", "--admin-url", thread.url]  # fmt: skip
            refused = runner.invoke(app, [*argv, "--token", "wrong"])
            assert refused.exit_code == 1 and "refused" in refused.output
            deadline = time.monotonic() + 15
            while True:  # until the platform's connector has bound to the simulator
                sent = runner.invoke(app, [*argv, "--token", token])
                if sent.exit_code == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert sent.exit_code == 0, sent.output
            assert "1 part(s)" in sent.output
            [push] = callback.wait_for(1)
        assert (push["METHOD"], push["SOURCE_MSISDN"], push["DEST_MSISDN"]) == (
            "SMS_PUSH_MO", "85261234567", "12345")  # fmt: skip
        assert push["SMS_CONTENT"] == "hello from the handset"
        listed = runner.invoke(app, [*db, "inbound", "list", "--customer", "acme"])
        assert "hello from the handset" in listed.output
    finally:
        callback.close()
