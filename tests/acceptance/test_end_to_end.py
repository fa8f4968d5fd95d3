"""The whole loop on real sockets: UIP packets in over HTTP → dispatcher → SMPP to the built-in
SMSC simulator → receipts back → SMS_PUSH_REPORT to a real callback server.

Everything runs on 127.0.0.1: the platform (role "all") in a uvicorn thread, the simulator in its
own event-loop thread, the customer's callback as a threaded HTTP/1.1 server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from seed import add_carrier, bump, seed_customer
from sqlalchemy import select, update

from cloudsms.domain.status import MessageState
from cloudsms.simulator.receipts import ReceiptPolicy, Rule
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage import tables
from cloudsms.storage.store import Store


class SimulatorThread:
    """The SMSC simulator on its own event loop in a thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = SmscSimulator("127.0.0.1", 0, **kwargs)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatorThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class CallbackSink:
    """A customer's DR server: records each report and answers the UIP ANSWER."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        #: time.monotonic() at which each of ``reports`` arrived (same index).
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                report = json.loads(body)
                with sink.lock:
                    sink.reports.append(report)
                    sink.arrived.append(time.monotonic())
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

    def __enter__(self) -> CallbackSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(10)

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.reports) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.reports)


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as s:
        yield s


def send(client: httpx.Client, url: str, key: str, route: str, serial: int, numbers: list[str],
         text: str, **extra: Any) -> dict[str, Any]:  # fmt: skip
    body = {
        "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial, "TIME": f"t{serial}",
        "AUTH_KEY": key, "ROUTE_ID": route, "VERSION": "2021-01-01", "SMS_CONTENT": text,
        "MULTI_MSISDN_LIST": [
            {"COUNTRY_CODE": int(n.split("-")[0]), "DEST_MSISDN": n.split("-")[1]} for n in numbers
        ],
        **extra,
    }  # fmt: skip
    answer: dict[str, Any] = orjson.loads(client.post(url, content=orjson.dumps(body)).content)
    return answer


@pytest.mark.slow
def test_send_deliver_report_end_to_end(store: Store, make_server: Any, sink: CallbackSink) -> None:
    long_text = "您的验证码是123456，请勿向他人透露。" * 7  # 140 UCS-2 units: 3 segments
    rules = [Rule("undeliverable", suffix="3"), Rule("expired", suffix="4")]
    with SimulatorThread(accounts={"cloudsms": "secret"},
                         receipts=ReceiptPolicy(rules=rules)) as smsc:  # fmt: skip
        seeded = seed_customer(store.engine, with_carrier=False, callback_url=sink.url)
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            add_carrier(conn, route_id, port=smsc.sim.port)
        bump(store.engine)
        server = make_server(role="all", report_expire_after_s=3.0, report_retry_base_s=0.2)
        with httpx.Client(timeout=10) as client:
            first = send(client, server.url, seeded.auth_key, seeded.route, 1,
                         ["852-67000011", "852-67000013", "852-67000014", "65-71234567"],
                         "Your code is 4711", CUSTOMER_BODY={"order": 7})  # fmt: skip
            second = send(client, server.url, seeded.auth_key, seeded.route, 2,
                          ["852-67000021"], long_text)  # fmt: skip
        assert first["RESULT_CODE"] == 1 and second["RESULT_CODE"] == 1
        uids = [d["SMS_UID"] for d in first["DETAIL_LIST"]] + [second["DETAIL_LIST"][0]["SMS_UID"]]
        reports = sink.wait_for(5, timeout=30)
        by_uid = {r["SMS_UID"]: r for r in reports}
        assert set(by_uid) == set(uids), reports
        states = {uid: by_uid[uid]["SMS_RESULT_LIST"][0]["SMS_STATE"] for uid in uids}
        assert states == {uids[0]: 2, uids[1]: 5, uids[2]: 3, uids[3]: 8, uids[4]: 2}
        assert by_uid[uids[3]]["SMS_RESULT_LIST"][0]["RESULT_DESC"] == "LOCAL_REJECTED"
        delivered = by_uid[uids[0]]
        assert delivered["AUTH_KEY"] == seeded.auth_key and delivered["CUSTOMER_BODY"] == {
            "order": 7
        }
        assert delivered["METHOD"] == "SMS_PUSH_REPORT" and delivered["SOURCE_MSISDN"] == "CloudSMS"
        assert by_uid[uids[4]]["SMS_COUNT"] == 3
        # The simulator reassembled the long message exactly.
        assert any(m.text == long_text for m in smsc.sim.received)
        message = store.get_message(uids[4])
        assert message is not None and message.state == MessageState.DELIVERED
        assert len(store.parts_of(uids[4])) == 3
        expired = store.get_message(uids[2])
        assert expired is not None and expired.state == MessageState.EXPIRED
        serials = sorted(r["SERIAL"] for r in reports)
        assert serials == list(range(1, len(reports) + 1))
        with store.engine.connect() as conn:
            statuses = conn.execute(select(tables.connector_status.c.state)).scalars().all()
        assert statuses == ["bound"]
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(enabled=True))


def test_an_accepted_push_is_on_the_lifecycle_without_an_attempt_row(
    store: Store, make_server: Any, sink: CallbackSink
) -> None:
    """The accepted push is kept on the report's outbox row (when, HTTP status, duration), not
    as a ``report_attempts`` row (those are for failed attempts, issue 14), and the message's
    lifecycle — the console's page — shows it as an accepted attempt."""
    seeded = seed_customer(store.engine, callback_url=sink.url)
    server = make_server(role="all")
    with httpx.Client(timeout=10) as client:
        answer = send(client, server.url, seeded.auth_key, seeded.route, 1, ["65-71234567"], "hi")
    uid = answer["DETAIL_LIST"][0]["SMS_UID"]
    assert sink.wait_for(1, timeout=15)[0]["SMS_UID"] == uid  # LOCAL_REJECTED report
    deadline = time.monotonic() + 5
    attempts: list[dict[str, Any]] = []
    while not attempts and time.monotonic() < deadline:
        attempts = store.message_lifecycle(uid).attempts
        time.sleep(0.05)
    [accepted] = attempts
    assert accepted["ok"] and accepted["http_status"] == 200 and accepted["duration_ms"] >= 0
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(tables.report_attempts).where(tables.report_attempts.c.sms_uid == uid)
        ).all()
    assert rows == []


def test_https_callback_verified_with_the_customers_ca(
    store: Store, make_server: Any, tmp_path: Any
) -> None:
    """A callback whose certificate comes from the customer's own CA is refused until an operator
    stores that CA for the customer; then the waiting report arrives."""
    import ssl

    import trustme

    from cloudsms.services.operator import Operator

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with CallbackSink() as sink:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        sink.server.socket = ctx.wrap_socket(sink.server.socket, server_side=True)
        https_url = sink.url.replace("http://", "https://")
        seeded = seed_customer(store.engine, callback_url=https_url)
        server = make_server(role="all", report_retry_base_s=0.2, report_retry_max_delay_s=0.5)
        with httpx.Client(timeout=10) as client:
            send(client, server.url, seeded.auth_key, seeded.route, 1, ["65-71234567"], "hi")
        time.sleep(1.5)
        assert sink.reports == []  # unknown CA: the push fails verification and is retried
        Operator(store).set_callback_ca("acme", ca.cert_pem.bytes().decode())
        reports = sink.wait_for(1, timeout=15)
        assert len(reports) == 1 and reports[0]["SMS_RESULT_LIST"][0]["SMS_STATE"] == 8
