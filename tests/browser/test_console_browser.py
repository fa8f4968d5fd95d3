"""The console and the portal in real headless Chromium, against a live platform with traffic
from the built-in SMSC simulator: log in, read the dashboard's charts, find a message sent
through the real API and read its lifecycle, approve a template, and see the customer's portal.

``UPDATE_DASHBOARD_PNG=1`` also writes the dashboard to ``docs/dashboard.png`` (the README's).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from seed import add_carrier, bump, seed_customer
from sqlalchemy import select

from cloudsms.admin import auth
from cloudsms.admin.app import create_admin_app
from cloudsms.config import Settings
from cloudsms.domain.ids import to_base36
from cloudsms.runtime.serve import admin_uvicorn_config
from cloudsms.runtime.uip_server import UipServer
from cloudsms.simulator.receipts import ReceiptPolicy, Rule
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage import tables
from cloudsms.storage.store import Store

DOCS = Path(__file__).resolve().parents[2] / "docs"


class _Thread:
    def __init__(self, server: uvicorn.Server | UipServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, daemon=True)

    def start(self) -> _Thread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"


class _Sink:
    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                report = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = json.dumps({"METHOD": "SMS_PUSH_REPORT", "TYPE": "ANSWER",
                                     "SERIAL": report["SERIAL"], "TIME": "2026-01-01 00:00:00",
                                     "RESULT_CODE": 1, "RESULT_DESC": "OK"}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Live:
    """Simulator + platform (role all) + admin listener + traffic, on 127.0.0.1.

    ``settings`` are more platform settings (``smpp_port``: the customers' SMPP server, whose
    live sessions the admin listener then shows, as under ``cloudsms serve``).
    """

    def __init__(self, tmp: Path, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = SmscSimulator(
            "127.0.0.1", 0, accounts={"cloudsms": "secret"},
            receipts=ReceiptPolicy(rules=[Rule("undeliverable", suffix="3")]),
        )  # fmt: skip
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        self.sink = _Sink()
        url = f"sqlite:///{tmp / 'cloudsms.db'}"
        loaded = Settings.load(environ={}, database_url=url, config_poll_s=0.1, role="all",
                               port=0, **settings)  # fmt: skip
        uip = UipServer(loaded)
        self.config = uip.platform.config
        self.store: Store = uip.platform.store
        self.platform = _Thread(uip)
        self.platform.start()
        admin_app = create_admin_app(uip.platform.store, smpp_sessions=uip.platform.smpp)
        config = admin_uvicorn_config(admin_app, host="127.0.0.1", port=0, log_level="warning")
        config.log_config = None
        self.admin = _Thread(uvicorn.Server(config)).start()
        self.token = auth.new_token()
        self.store.create_admin_token("ops", auth.digest(self.token), "admin")

    def seed(self) -> Any:
        seeded = seed_customer(self.store.engine, name="acme", with_carrier=False,
                               callback_url=self.sink.url)  # fmt: skip
        other = seed_customer(self.store.engine, name="globex", route=seeded.route,
                              with_carrier=False)  # fmt: skip
        with self.store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            add_carrier(conn, route_id, name="hk-sim", port=self.sim.port)
        bump(self.store.engine)
        self.store.add_template(seeded.customer_id, "Your verification code is {code}", None)
        version = self.store.config_version()
        _wait(lambda: self.config.current.snapshot.version >= version, 10)
        return seeded, other

    def send(self, key: str, route: str, serial: int, numbers: list[str], text: str) -> list[str]:
        body = {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial, "TIME": "now",
            "AUTH_KEY": key, "ROUTE_ID": route, "VERSION": "2021-01-01", "SMS_CONTENT": text,
            "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": int(n.split("-")[0]),
                                   "DEST_MSISDN": n.split("-")[1]} for n in numbers],
        }  # fmt: skip
        answer = httpx.post(self.platform.base + "/dave/io", json=body, timeout=10).json()
        assert answer["RESULT_CODE"] == 1, answer
        return [d["SMS_UID"] for d in answer["DETAIL_LIST"]]

    def close(self) -> None:
        self.admin.stop()
        self.platform.stop()
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.sink.server.shutdown()


@pytest.fixture
def live(tmp_path: Path, browser: Any) -> Iterator[Live]:
    env = Live(tmp_path)
    try:
        yield env
    finally:
        env.close()


def _wait(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _history(live: Live, *customers: int) -> None:
    """An hour of earlier traffic, written straight to the store: a screenshot worth looking at."""
    import random

    rng = random.Random(7)
    now = live.store.now_ms()
    connector = live.store.list_connectors()[0].id
    states = ["delivered"] * 16 + ["undeliverable", "expired", "rejected", "submitted"]
    rows = []
    for i in range(900):
        created = now - 3_600_000 + int(3_540_000 * (i / 900) ** 0.8) + rng.randrange(0, 4000)
        cc, number = rng.choice([(852, "6700"), (852, "9100"), (65, "9123"), (86, "1380013")])
        state = rng.choice(states)
        rows.append({
            # Time-ordered like real SMS_UIDs (the Messages page sorts by SMS_UID).
            "sms_uid": to_base36(created, 9) + "HISTORY0" + to_base36(i, 5),
            "customer_id": rng.choice(customers), "serial": i % 65535 + 1,
            "country_code": cc, "dest_msisdn": number + f"{i:04d}", "route_name": "hist",
            "sender": "CloudSMS", "content": "history", "encoding": "gsm7", "segments": 1,
            "priority": 0, "send_at_ms": created, "state": state, "fee_micros": 50_000,
            "currency": "HKD", "created_ms": created, "updated_ms": created + 2000,
            "connector_id": None if state == "rejected" else connector,
        })  # fmt: skip
    with live.store.engine.begin() as conn:
        conn.execute(tables.messages.insert(), rows)


CHART_TOTAL = """(id) => {
  const chart = window.Chart && Chart.getChart(document.getElementById(id));
  if (!chart || !chart.data.datasets.length) return null;
  return chart.data.datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0);
}"""


def test_console_in_chromium(live: Live, page: Any) -> None:
    acme, globex = live.seed()
    uids = live.send(acme.auth_key, acme.route, 1,
                     ["852-67000011", "852-67000012", "852-67000013", "65-71234567"],
                     "Your verification code is 4711")  # fmt: skip
    uids += live.send(globex.auth_key, globex.route, 1, ["852-67000021", "86-13800138000"],
                      "Meeting moved to 3pm")  # fmt: skip
    if os.environ.get("UPDATE_DASHBOARD_PNG"):  # a fuller picture for the README
        for serial in range(2, 14):
            numbers = [
                f"852-670001{serial:02d}",
                f"852-690002{serial:02d}",
                f"65-9123{serial:04d}",
                f"44-7700900{serial:03d}",
                f"1-20255501{serial:02d}",
            ][: 1 + serial % 5]
            key, route = (acme if serial % 3 else globex).auth_key, acme.route
            extra = live.send(key, route, serial, numbers, f"Your verification code is {serial}")
            uids += extra
            time.sleep(0.3)
        _history(live, acme.customer_id, globex.customer_id)
    stored = [u for u in uids if u]  # the 86 number needs a registered template: Intercept, no UID
    target = uids[0]
    _wait(lambda: live.store.get_message(target).state.value == "delivered")  # type: ignore[union-attr]
    _wait(
        lambda: (
            any(
                r.ok
                for r in live.store.message_lifecycle(target).attempts  # type: ignore[attr-defined]
            )
            if False
            else bool(live.store.message_lifecycle(target).attempts)
        )
    )

    base = live.admin.base
    # Log in.
    page.goto(base + "/console/")
    assert page.url.startswith(base + "/console/login")
    page.fill("#token", live.token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/console/")
    assert page.locator("h1").inner_text() == "Dashboard"

    # Read the charts: every message sent is in the "by state" and "by customer" charts.
    total = len(stored) + (900 if os.environ.get("UPDATE_DASHBOARD_PNG") else 0)
    page.wait_for_function(f"() => ({CHART_TOTAL})('chart-state') === {total}")
    assert page.evaluate(CHART_TOTAL, "chart-customer") == total
    labels = page.evaluate(
        "() => Chart.getChart(document.getElementById('chart-customer')).data.datasets"
        ".map(d => d.label).sort()"
    )
    assert labels == ["acme", "globex"]
    page.wait_for_function(
        "() => document.querySelector('tr[data-connector=\"hk-sim\"] .badge').textContent"
        " === 'bound'"
    )
    if os.environ.get("UPDATE_DASHBOARD_PNG"):
        page.wait_for_timeout(500)
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)

    # The Messages page lists the newest messages before any search; then find one by SMS_UID.
    page.click("nav >> text=Messages")
    listed = page.locator("#results a.uid").all_inner_texts()
    assert listed[: len(stored)] == sorted(stored, reverse=True)
    page.fill("input[name=sms_uid]", target)
    page.click("#search button[type=submit]")
    page.click(f"#results a:has-text('{target}')")
    timeline = page.locator("#timeline").inner_text()
    assert "submitted" in timeline and "hk-sim" in timeline
    assert "carrier receipt DELIVRD" in timeline
    assert "push accepted HTTP 200" in timeline

    # Approve the pending template.
    page.click("nav >> text=Approvals")
    row = page.locator("#queue-templates tr", has_text="Your verification code is {code}")
    row.locator("form.approve button").click()
    page.wait_for_selector(".flash.ok")
    assert "Your verification code" not in page.locator("#queue-templates").inner_text()
    approved = live.store.list_registrations("template", "acme", "approved")
    assert [r.text for r in approved] == ["Your verification code is {code}"]

    # The customer's own portal: its messages, not the other customer's.
    page.goto(base + "/portal/login")
    page.fill("#auth_key", acme.auth_key)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/portal/")
    assert "balance" in page.locator("main").inner_text().lower()
    page.wait_for_function(f"() => ({CHART_TOTAL})('chart-state') > 0")
    page.click("nav >> text=Messages")
    page.fill("input[name=sms_uid]", target)
    page.click("form.search button[type=submit]")
    assert target in page.locator("#results").inner_text()
    page.fill("input[name=sms_uid]", uids[4])  # globex's message: not found for acme
    page.click("form.search button[type=submit]")
    assert page.locator("#results").inner_text().strip().endswith("No messages.")
