"""The customer SDK as its own distribution (sdk/, ``cloudsms-client``), installed as a customer
would: ``pip install ./sdk`` into a fresh virtual environment, then used against the real
platform, and its sample receiver run with the ``serve`` extra.

pip takes httpx (and setuptools for the build) from the configured index or the local cache.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from platform_fixtures import RunningServer
from seed import Seeded, seed_customer

import cloudsms_client
from cloudsms.config import Settings
from cloudsms.domain.reports import ReportContent, build_report
from cloudsms.storage.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: What a customer's application must not get from the SDK: the platform and its server stack.
PLATFORM_ONLY = ("sqlalchemy", "psycopg", "alembic", "prometheus-client", "starlette", "orjson")

pytestmark = pytest.mark.slow


def run(*args: str | Path, timeout: float = 600, **kw: object) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[RunningServer, Seeded]]:
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    store = Store.open(url)
    seeded = seed_customer(store.engine)
    store.close()
    settings = Settings.load(environ={}, database_url=url, role="api", config_poll_s=0.05)
    with RunningServer(settings) as server:
        yield server, seeded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_platform_keeps_the_sdk_under_its_old_name() -> None:
    """``cloudsms.client`` (and its submodules) are the very objects of ``cloudsms_client``."""
    for name in ("models", "receiver", "sync", "aio", "_core"):
        old = importlib.import_module(f"cloudsms.client.{name}")
        assert old is importlib.import_module(f"cloudsms_client.{name}")
    client = importlib.import_module("cloudsms.client")
    assert client.Client is cloudsms_client.Client
    assert client.ResultCode is cloudsms_client.ResultCode
    assert importlib.import_module("cloudsms.domain.codes").ResultCode is cloudsms_client.ResultCode


def test_sdk_installs_alone_sends_and_its_sample_receiver_runs(
    tmp_path: Path, platform: tuple[RunningServer, Seeded]
) -> None:
    server, seeded = platform
    source = tmp_path / "sdk"
    shutil.copytree(
        ROOT / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", source)

    # Only httpx and its own dependencies: nothing of the platform.
    installed = {
        p["name"].lower() for p in json.loads(run(python, "-m", "pip", "list", "--format=json"))
    }
    assert "cloudsms-client" in installed and "httpx" in installed
    assert not installed & {*PLATFORM_ONLY, "uvicorn", "cloudsms"}, installed

    # The SDK sends through the real platform from that environment.
    script = f"""
import sys
from cloudsms_client import Client
with Client({server.url!r}, {seeded.auth_key!r}, route_id={seeded.route!r}) as client:
    [result] = client.send("Hello from a fresh venv", ["852-67000011", "86-1380013800"])
ok, bad = result.recipients
print(result.code.name, ok.code.name, bool(ok.sms_uid), bad.desc, bad.detail)
print(sorted(m for m in ("sqlalchemy", "uvicorn", "cloudsms") if m in sys.modules))
"""
    printed = run(python, "-c", script).splitlines()
    assert printed[0] == (
        "OK OK True Invalid_parameter DEST_MSISDN 1380013800 has 10 digits;"
        " mainland China mobiles have 11"
    )
    assert printed[1] == "[]"

    # serve_receiver needs the 'serve' extra, and says so.
    sample = source / "examples" / "receive_reports.py"
    env = {**os.environ, "CLOUDSMS_AUTH_KEY": seeded.auth_key}
    missing = subprocess.run(
        [python, sample, "127.0.0.1", "1"], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode != 0 and "pip install 'cloudsms-client[serve]'" in missing.stderr

    run(python, "-m", "pip", "install", "-q", f"{source}[serve]")
    port = free_port()
    receiver = subprocess.Popen(
        [python, sample, "127.0.0.1", str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().startswith("listening on")
        content = ReportContent(
            auth_key=seeded.auth_key, serial=5, sms_uid="UID1", sender="CloudSMS",
            country_code=852, dest_msisdn="67000011", sms_state=2, result_desc="DELIVERED",
            report_ms=1_764_000_003_000, customer_body='{"order": "A-1"}', segments=1,
            fee_micros=50_000, currency="HKD",
        )  # fmt: skip
        report = build_report(content, push_ms=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/", content=report)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the sample receiver did not start"
                time.sleep(0.1)
        assert orjson.loads(answer.content)["RESULT_CODE"] == 1
        assert receiver.stdout.readline().split() == [
            "UID1", "DELIVERED", "DELIVERED", "0.05", "HKD", "{'order':", "'A-1'}"
        ]  # fmt: skip
    finally:
        receiver.terminate()
        receiver.wait(timeout=20)
    assert cloudsms_client.__version__ == "0.1.0"
