"""Changes made through the admin API reach the running pipeline within a second, and real
traffic through the simulator shows up whole on the lifecycle endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conftest import Admin, ok, send_sms
from seed import add_carrier, bump, seed_customer
from sqlalchemy import select

from cloudsms.domain.codes import ResultCode
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage import tables

INTERCEPT = int(ResultCode.INTERCEPT)


def _until(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate()`` holds; AssertionError after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def test_admin_changes_reach_the_running_api_within_a_second(
    admin_server: Callable[..., Admin],
) -> None:
    admin = admin_server(config_poll_s=0.5)  # the production default
    seeded = seed_customer(admin.store.engine, name="acme")
    admin.platform.wait_config(
        lambda: bool(admin.platform.platform.config.current.snapshot.customers_by_key)
    )
    serial = iter(range(1, 10_000))
    with admin.client() as client:

        def code(number: str = "852-67000011", text: str = "hello", **extra: Any) -> int:
            answer = send_sms(client, admin.uip_url, seeded.auth_key, seeded.route, next(serial),
                              [number], text, **extra)  # fmt: skip
            details = answer.get("DETAIL_LIST") or []
            return int((details[0] if details else answer)["RESULT_CODE"])

        assert code() == 1
        # Blacklisting a number: Intercept within a second.
        ok(admin.api.post("/api/v1/blacklist", json={"number": "85267000011"}), 201)
        assert _until(lambda: code() == INTERCEPT, 1.0) <= 1.0
        ok(admin.api.delete("/api/v1/blacklist", params={"number": "85267000011"}))
        assert _until(lambda: code() == 1, 1.0) <= 1.0

        # A destination that needs a registered template: refused until one is approved.
        ok(admin.api.put("/api/v1/policies/852", json={"requires_template": True}))
        assert _until(lambda: code(text="Your code is 4711") == INTERCEPT, 1.0) <= 1.0
        template = ok(
            admin.api.post("/api/v1/registrations/templates",
                           json={"customer": "acme", "text": "Your code is {code}"}),
            201,
        )  # fmt: skip
        assert code(text="Your code is 4711") == INTERCEPT  # pending is not approved
        ok(admin.api.post(f"/api/v1/registrations/templates/{template['id']}/approve"))
        assert _until(lambda: code(text="Your code is 4711") == 1, 1.0) <= 1.0

        # Disabling the customer: its key stops working.
        ok(admin.api.patch("/api/v1/customers/acme", json={"enabled": False}))
        assert _until(lambda: code() == 0x05, 1.0) <= 1.0


class _Simulator:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"})
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> _Simulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _Sink:
    """The customer's callback: answers every report with RESULT_CODE 1."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                report = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps({
                    "METHOD": "SMS_PUSH_REPORT", "TYPE": "ANSWER", "SERIAL": report["SERIAL"],
                    "TIME": "2026-01-01 00:00:00", "RESULT_CODE": 1, "RESULT_DESC": "OK",
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dr"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.mark.slow
def test_lifecycle_of_a_message_through_the_simulator(
    admin_server: Callable[..., Admin], store: Any
) -> None:
    with _Simulator() as smsc, _Sink() as sink:
        seeded = seed_customer(store.engine, name="acme", with_carrier=False, callback_url=sink.url)
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            add_carrier(conn, route_id, port=smsc.sim.port)
        bump(store.engine)
        admin = admin_server(role="all")
        long_text = "您的验证码是123456，请勿向他人透露。" * 4  # 2 UCS-2 segments
        with httpx.Client(timeout=10) as client:
            answer = send_sms(client, admin.uip_url, seeded.auth_key, seeded.route, 1,
                              ["852-67000011"], long_text)  # fmt: skip
        uid = answer["DETAIL_LIST"][0]["SMS_UID"]

        def pushed() -> bool:
            life = ok(admin.api.get(f"/api/v1/messages/{uid}"))
            return bool(life["attempts"]) and life["message"]["state"] == "delivered"

        _until(pushed, 30)
        life = ok(admin.api.get(f"/api/v1/messages/{uid}"))
        assert life["message"]["connector"] == "carrier-1" and life["message"]["segments"] == 2
        assert [p["seq"] for p in life["parts"]] == [1, 2]
        assert all(p["carrier_id"] and p["connector"] == "carrier-1" for p in life["parts"])
        assert {r["stat"] for r in life["receipts"]} == {"DELIVRD"}
        assert life["reports"][0]["sms_state"] == 2 and life["reports"][0]["done_ms"]
        assert life["attempts"][0]["ok"] is True and life["attempts"][0]["http_status"] == 200
        assert life["attempts"][0]["duration_ms"] is not None  # kept on the outbox row
        summary = ok(admin.api.get("/api/v1/stats/summary"))
        assert summary["delivery_rate"] == 1.0
        # Connector status is written every second by the process that owns the link.
        _until(
            lambda: ok(admin.api.get("/api/v1/stats/summary"))["connectors"][0]["state"] == "bound",
            5,
        )
