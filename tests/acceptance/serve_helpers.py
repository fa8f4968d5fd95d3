"""Helpers for tests that run `cloudsms serve` as a real process and read its log."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

#: The virtualenv's bin directory: the `cloudsms` command under test.
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(BIN / "cloudsms"), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for(log: Path, found: Callable[[str], bool], what: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if any(found(line) for line in text.splitlines()):
            return text
        time.sleep(0.1)
    raise AssertionError(f"no log line {what} in {timeout} s:\n{log.read_text()}")


def post(url: str, packet: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(packet).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    result: dict[str, object] = json.loads(body)
    return result
