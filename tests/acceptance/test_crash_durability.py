"""Durable acceptance: kill -9 the server right after a burst of OKs; nothing acknowledged is lost.

The server runs as a real process (`cloudsms serve`); clients hammer it over keep-alive
connections; the process is killed with SIGKILL while requests are still in flight. Every SMS_UID
a client read in an OK answer must then be in the store exactly once, and the balance must equal
the opening balance less the fees of exactly the stored messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from seed import seed_customer
from sqlalchemy import func, select

from cloudsms.storage import tables
from cloudsms.storage.store import Store

CLOUDSMS = str(Path(sys.executable).with_name("cloudsms"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CLOUDSMS_DATABASE_URL": url, "CLOUDSMS_PORT": str(port)}
    proc = subprocess.Popen(
        [CLOUDSMS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
    proc.kill()
    raise RuntimeError("server did not become ready")


async def hammer(
    url: str, key: str, route: str, acked: list[str], stop: asyncio.Event, worker: int
) -> None:
    serial = 0
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            serial += 1
            body = orjson.dumps(
                {
                    "METHOD": "SMS_SEND_REQUEST",
                    "TYPE": "REQUEST",
                    "SERIAL": serial % 65535 + 1,
                    "TIME": f"w{worker}-{serial}",
                    "AUTH_KEY": key,
                    "ROUTE_ID": route,
                    "MULTI_MSISDN_LIST": [
                        {"DEST_MSISDN": f"6{worker:03d}{i:04d}", "COUNTRY_CODE": 852}
                        for i in range(3)
                    ],
                    "SMS_CONTENT": "durability",
                    "VERSION": "2021-01-01",
                }
            )
            try:
                response = await client.post(url, content=body)
            except httpx.TransportError:
                return  # the server died under us: what was not answered was not promised
            answer = orjson.loads(response.content)
            if answer["RESULT_CODE"] == 1:
                acked.extend(d["SMS_UID"] for d in answer["DETAIL_LIST"] if d["SMS_UID"])


@pytest.mark.slow
def test_kill_9_after_burst_loses_nothing(database_url: str) -> None:
    store = Store.open(database_url)
    seeded = seed_customer(store.engine, balance_micros=10**12)
    store.close()
    port = free_port()
    proc = start_server(database_url, port)
    acked: list[str] = []

    async def run() -> None:
        stop = asyncio.Event()
        url = f"http://127.0.0.1:{port}/dave/io"
        tasks = [
            asyncio.create_task(hammer(url, seeded.auth_key, seeded.route, acked, stop, w))
            for w in range(16)
        ]
        deadline = time.monotonic() + 15
        while len(acked) < 1500 and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a count
            await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests are in flight right now
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 1500, "the burst was too small to prove anything"
    assert len(set(acked)) == len(acked)

    # Restart the server on the same store: it must come up and serve.
    proc = start_server(database_url, port)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)

    store = Store.open(database_url)
    try:
        with store.engine.connect() as conn:
            stored = {
                uid: n
                for uid, n in conn.execute(
                    select(tables.messages.c.sms_uid, func.count()).group_by(
                        tables.messages.c.sms_uid
                    )
                )
            }
            fees = conn.execute(select(func.sum(tables.messages.c.fee_micros))).scalar() or 0
        missing = [uid for uid in acked if stored.get(uid) != 1]
        assert missing == []
        assert len(stored) >= len(acked)
        assert store.customer_balance(seeded.customer_id) == 10**12 - fees
    finally:
        store.close()
