"""Reports of messages accepted before the customer has a callback URL are kept, not dropped.

Guide §9 promises a report for every accepted SMS_UID. A customer sends first and sets its
callback later: its reports are held (DR_QUERY answers, the portal shows them pending and why)
and pushed once an operator sets the URL within the retry window.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import Admin, ok, send_sms
from helpers import login
from seed import seed_customer


class Callback:
    """A customer's report endpoint on 127.0.0.1 that accepts every report."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        reports = self.reports

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                report = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reports.append(report)
                body = json.dumps({"METHOD": "SMS_PUSH_REPORT", "TYPE": "ANSWER",
                                   "SERIAL": report["SERIAL"], "TIME": "t",
                                   "RESULT_CODE": 1, "RESULT_DESC": "OK"}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def callback() -> Iterator[Callback]:
    cb = Callback()
    yield cb
    cb.server.shutdown()


def until(predicate: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.1)
    return value


def test_reports_wait_for_a_callback_url_then_arrive(
    admin_server: Callable[..., Admin], callback: Callback
) -> None:
    admin = admin_server(role="all", report_retry_base_s=0.2)
    seeded = seed_customer(admin.store.engine, name="acme")  # no callback URL
    admin.platform.wait_config(
        lambda: len(admin.platform.platform.config.current.snapshot.customers_by_key) == 1
    )
    with admin.client() as web:
        # Two invalid Singapore numbers: LOCAL_REJECTED, so their reports are due at once.
        sent = send_sms(web, admin.uip_url, seeded.auth_key, seeded.route, 1,
                        ["65-71234567", "65-12345678"], "hello")  # fmt: skip
        uids = [d["SMS_UID"] for d in sent["DETAIL_LIST"]]
        assert sent["RESULT_CODE"] == 1 and all(uids)

        login(web, "portal", seeded.auth_key)

        def held() -> bool:
            page = web.get("/portal/reports").text
            rows = [line for line in page.split("<tr>") if any(uid in line for uid in uids)]
            return len(rows) == 2 and all(
                "pending" in row and "no callback_url yet" in row for row in rows
            )

        until(held)  # the pusher has seen them: held, not given up
        query = {
            "METHOD": "DR_QUERY", "TYPE": "REQUEST", "SERIAL": 2, "TIME": "t",
            "AUTH_KEY": seeded.auth_key, "VERSION": "2021-01-01", "SMS_UID_LIST": uids,
        }  # fmt: skip
        polled = web.post(admin.uip_url, json=query).json()["SMS_RESULT_LIST"]
        assert [(e["SMS_STATE"], e["STATE_DESC"]) for e in polled] == [(8, "LOCAL_REJECTED")] * 2

        ok(admin.api.patch("/api/v1/customers/acme", json={"callback_url": callback.url}))
        until(lambda: len(callback.reports) >= 2)
        assert sorted(r["SMS_UID"] for r in callback.reports) == sorted(uids)
        assert {r["SMS_RESULT_LIST"][0]["RESULT_DESC"] for r in callback.reports} == {
            "LOCAL_REJECTED"
        }
        page = until(lambda: (p := web.get("/portal/reports").text).count("pending") == 0 and p)
        assert all(uid in page for uid in uids) and "no callback_url" not in page
