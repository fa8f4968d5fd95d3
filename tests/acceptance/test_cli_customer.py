"""The customer CLI (`cloudsms send`, `query`, `listen`) against the real platform over HTTP:
the Typer app through CliRunner, and `cloudsms listen` as the installed console script."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from seed import Seeded, seed_customer
from typer.testing import CliRunner, Result

from cloudsms.client import Client
from cloudsms.config import Settings
from cloudsms.domain.reports import ReportContent, build_report
from cloudsms.runtime.uip_server import UipServer
from cloudsms.storage.store import Store

CLOUDSMS = str(Path(sys.executable).with_name("cloudsms"))
Run = Callable[..., Result]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[str, Seeded]]:
    """The platform (API role) on a SQLite file, served on 127.0.0.1, and a seeded customer."""
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    store = Store.open(url)
    seeded = seed_customer(store.engine)
    store.close()
    settings = Settings.load(environ={}, database_url=url, role="api", config_poll_s=0.05)
    server = UipServer(settings, port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/dave/io", seeded
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def run(platform: tuple[str, Seeded]) -> Run:
    """``run(*args, code=0)``: the CLI with CLOUDSMS_URL/AUTH_KEY/ROUTE_ID set for the customer."""
    from cloudsms.cli import app

    url, seeded = platform
    env = {
        "CLOUDSMS_URL": url,
        "CLOUDSMS_AUTH_KEY": seeded.auth_key,
        "CLOUDSMS_ROUTE_ID": seeded.route,
    }
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, **extra_env: str) -> Result:
        result = runner.invoke(app, list(args), env={**env, **extra_env})
        assert result.exit_code == code, (args, result.exit_code, result.output)
        assert "Traceback" not in result.output
        return result

    return invoke


def test_send_prints_each_recipient(run: Run) -> None:
    result = run("send", "--to", "852-67000011", "--to", "852-67ab", "--text", "hi", code=1)
    lines = result.stdout.splitlines()
    ok = next(line for line in lines if "67000011" in line)
    bad = next(line for line in lines if "67ab" in line)
    assert "0x01" in ok and " OK " in ok
    assert "0x10000001" in bad and "Invalid_parameter" in bad
    assert "1 packet: 1 accepted, 1 refused" in result.stderr


def test_send_prints_why_a_recipient_was_refused(run: Run) -> None:
    result = run("send", "--to", "86-1380013800", "--to", "852-67000011", "--text", "hi",
                 "--json", code=1)  # fmt: skip
    china, hong_kong = (orjson.loads(line) for line in result.stdout.splitlines())
    assert china["RESULT_DETAIL"] == (
        "DEST_MSISDN 1380013800 has 10 digits; mainland China mobiles have 11"
    )
    assert hong_kong["RESULT_CODE"] == 1 and hong_kong["RESULT_DETAIL"] == ""


def test_send_from_file_in_packets(run: Run, tmp_path: Path) -> None:
    numbers = [f"852-6{n:07d}" for n in range(250)]
    listing = tmp_path / "to.txt"
    listing.write_text("# customers\n" + "\n".join(numbers) + "\n\n", encoding="utf-8")
    result = run("send", "--to-file", str(listing), "--text", "hello", "--json", "--priority", "1")
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [f"{r['COUNTRY_CODE']}-{r['DEST_MSISDN']}" for r in rows] == numbers
    assert {r["RESULT_CODE"] for r in rows} == {1}
    assert len({r["SMS_UID"] for r in rows}) == 250
    assert "2 packets: 250 accepted, 0 refused" in result.stderr


def test_send_refused_packet_and_bad_input(run: Run, tmp_path: Path) -> None:
    refused = run("send", "--to", "852-67000011", "--text", "hi", code=1, CLOUDSMS_AUTH_KEY="x")
    assert "Channel_not_exist" in refused.stdout
    assert "packets refused: Channel_not_exist (0x05)" in refused.stderr
    bad = run("send", "--to", "67000011", "--text", "hi", code=2)
    assert bad.stderr.startswith("error: --to: recipient '67000011' is not COUNTRYCODE-NUMBER")
    listing = tmp_path / "to.txt"
    listing.write_text("852-67000011\nnot a number\n", encoding="utf-8")
    bad_file = run("send", "--to-file", str(listing), "--text", "hi", code=2)
    assert f"error: {listing}:2:" in bad_file.stderr
    down = run(
        "send", "--to", "852-67000011", "--text", "hi", "--retries", "0", code=1,
        CLOUDSMS_URL="http://127.0.0.1:9/dave/io",
    )  # fmt: skip
    assert down.stderr.startswith("error: no answer from http://127.0.0.1:9/dave/io")
    assert len(down.stderr.strip().splitlines()) == 1


def test_query(run: Run, platform: tuple[str, Seeded]) -> None:
    url, seeded = platform
    with Client(url, seeded.auth_key, route_id=seeded.route) as client:
        [sent] = client.send("hello", ["852-67000011"])
    uid = sent.recipients[0].sms_uid
    table = run("query", uid)
    [row] = [line for line in table.stdout.splitlines() if uid in line]
    assert "0x01 OK" in row and "852-67000011" in row and "9 IDLE" in row and "0.05 HKD" in row
    result = run("query", uid, "NOSUCHUID", "--json", code=1)
    mine, unknown = (orjson.loads(line) for line in result.stdout.splitlines())
    assert mine["SMS_STATE"] == 9 and mine["FEE"] == "0.05" and mine["SMS_COUNT"] == 1
    assert unknown["RESULT_CODE"] == 0x1000000E and unknown["SMS_STATE"] is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_listen_prints_reports_as_they_arrive() -> None:
    key = "K" * 128
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSMS_")}
    proc = subprocess.Popen(
        [CLOUDSMS, "listen", "--host", "127.0.0.1", "--port", str(port), "--json"],
        env={**env, "CLOUDSMS_AUTH_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "listen did not start"
                time.sleep(0.05)
        content = ReportContent(
            auth_key=key, serial=5, sms_uid="UID1", sender="CloudSMS", country_code=852,
            dest_msisdn="67000011", sms_state=2, result_desc="DELIVERED",
            report_ms=1_764_000_003_000, customer_body='{"order": "A-1"}', segments=1,
            fee_micros=50_000, currency="HKD",
        )  # fmt: skip
        answer = httpx.post(url, content=build_report(content, push_ms=1_764_000_005_000))
        assert orjson.loads(answer.content)["RESULT_CODE"] == 1
        wrong = httpx.post(url, content=build_report(_with_key(content, "W"), push_ms=0))
        assert orjson.loads(wrong.content)["RESULT_CODE"] == 5
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "no report printed"
        printed = orjson.loads(proc.stdout.readline())
        assert printed["SMS_UID"] == "UID1" and printed["SMS_STATE"] == 2
        assert printed["FEE"] == "0.05" and printed["CUSTOMER_BODY"] == {"order": "A-1"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.stdout is not None and proc.stdout.read() == b""  # the refused one printed nothing


def _with_key(content: ReportContent, key: str) -> ReportContent:
    from dataclasses import replace

    return replace(content, auth_key=key)


def test_send_wait_reports_messages_not_delivered_in_time(run: Run) -> None:
    """--wait: the states after the wait, exit 1 when a message is not DELIVERED (here nothing
    dispatches: an API-only platform). README's smoke test pins the DELIVERED case."""
    started = time.monotonic()
    result = run("send", "--to", "852-67000011", "--text", "hi", "--wait", "1.5", "--json", code=1)
    assert 1.5 <= time.monotonic() - started < 15
    sent, state = (orjson.loads(line) for line in result.stdout.splitlines())
    assert state["SMS_UID"] == sent["SMS_UID"] and state["SMS_STATE"] == 9
    assert "0 of 1 delivered, 1 not final after 1.5 s" in result.stderr
