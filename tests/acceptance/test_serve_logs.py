"""What `cloudsms serve` tells its operator in its log (issue 12.7 and 12.9).

One real process, driven over real sockets: it must say where it listens (UIP endpoint, admin
listener, built-in simulator), why and when it stops (SIGTERM), give every time with its zone,
name what each warning is about (client address, customer, SMS_UID), and log a malformed
request once.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from serve_helpers import BIN, cli, free_port, post, wait_for

UTC8 = dt.timezone(dt.timedelta(hours=8))
#: ``2026-01-01 12:00:00.123+08:00 LEVEL logger: message key=value …``
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+08:00) ([A-Z]+) ([\w.]+): (.*)$")


def test_serve_logs_what_an_operator_needs(tmp_path: Path) -> None:
    uip, admin, smsc, closed = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CLOUDSMS_DATABASE_URL": f"sqlite:///{tmp_path / 'cloudsms.db'}",
        "CLOUDSMS_PORT": str(uip),
        "CLOUDSMS_ADMIN_PORT": str(admin),
        "CLOUDSMS_SIMULATOR_PORT": str(smsc),
    }
    # The demo customer, route and simulator carrier; reports go to a port nobody listens on.
    banner = cli("demo", "--no-serve", env=env, cwd=tmp_path)
    key = re.search(r"AUTH_KEY:\s+(\S+)", banner)
    assert key is not None
    cli("customers", "set-callback", "demo", f"http://127.0.0.1:{closed}/", env=env, cwd=tmp_path)

    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(BIN / "cloudsms"), "serve"], env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{uip}/dave/io"
        admin_line = f"INFO cloudsms.server: listening on http://127.0.0.1:{admin}/ (admin listener"
        wait_for(log, lambda line: admin_line in line, "admin")  # the last listener to start
        text = log.read_text()
        assert f"INFO cloudsms.server: listening on smpp://127.0.0.1:{smsc} (built-in SMSC" in text
        assert f"INFO cloudsms.server: listening on {url} (UIP endpoint)" in text

        # A request httptools cannot parse: one line, naming the client.
        with socket.create_connection(("127.0.0.1", uip)) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
        wait_for(log, lambda line: "event=malformed_http client_ip=127.0.0.1" in line, "400")

        packet: dict[str, object] = {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": 1,
            "TIME": dt.datetime.now(UTC8).strftime("%Y-%m-%d %H:%M:%S"), "AUTH_KEY": key[1],
            "ROUTE_ID": "DEMO",
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
            "SMS_CONTENT": "Your code is 123456.", "VERSION": "2021-01-01",
        }  # fmt: skip
        answer = post(url, packet)
        assert answer["RESULT_CODE"] == 1, answer
        details = answer["DETAIL_LIST"]
        assert isinstance(details, list)
        uid = details[0]["SMS_UID"]
        # The push to the closed port fails: the line names the message and the customer.
        wait_for(
            log,
            lambda line: "report push failed" in line and f"sms_uid={uid}" in line,
            f"report push failed … sms_uid={uid}",
        )

        # Security events name the client and, when known, the customer.
        post(url, {**packet, "SERIAL": 2, "AUTH_KEY": "x" * 128})
        wait_for(log, lambda line: "AUTH_KEY" in line and "client_ip=127.0.0.1" in line, "key")
        cli("customers", "whitelist", "add", "demo", "127.0.0.2/32", env=env, cwd=tmp_path)
        deadline = time.monotonic() + 10
        while post(url, {**packet, "SERIAL": 3})["RESULT_CODE"] == 1:
            assert time.monotonic() < deadline, "the whitelist never took effect"
            time.sleep(0.3)
        wait_for(
            log,
            lambda line: (
                "WARNING cloudsms.security" in line
                and "client_ip=127.0.0.1" in line
                and "customer=demo" in line
            ),
            "whitelist",
        )

        server.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once drained: the process ends "killed by SIGTERM".
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = log.read_text().splitlines()
    assert "INFO cloudsms.server: SIGTERM received: stopping" in "\n".join(lines)
    assert lines[-1].endswith(f"INFO cloudsms.server: stopped: {url} (UIP endpoint)"), lines[-1]
    assert sum("Invalid HTTP request received." in line for line in lines) == 1
    assert not any("Uvicorn running" in line for line in lines)  # ours say which listener

    # Every line: a time with its zone (UTC+8, like the platform's other times), then the level.
    now = dt.datetime.now(UTC8)
    for line in lines:
        if line.startswith("  ") or line == "Traceback (most recent call last):":
            continue
        match = LINE.match(line)
        assert match, f"not a log line with its zone: {line!r}"
        when = dt.datetime.fromisoformat(match[1])
        assert abs((now - when).total_seconds()) < 300, line
