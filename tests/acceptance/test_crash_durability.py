"""Durable acceptance: kill -9 the server right after a burst of OKs; nothing acknowledged is lost.

The server runs as a real process (`cloudsms serve`); clients hammer it over keep-alive
connections; the process is killed with SIGKILL while requests are still in flight. Every SMS_UID
a client read in an OK answer must then be in the store, for the number it was sent to; no
recipient may be stored twice (each has a number of its own, so rows are counted per number —
counted per SMS_UID, the primary key, they could never show a duplicate); and the balance must
equal the opening balance less the fees of exactly the stored messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
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
    url: str, key: str, route: str, acked: dict[str, str], stop: asyncio.Event, worker: int
) -> None:
    """Packets of 3 recipients, each with a number of its own; ``acked``: SMS_UID → number."""
    serial = 0
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            serial += 1
            numbers = [f"6{worker:02d}{serial * 3 + i:05d}" for i in range(3)]
            body = orjson.dumps(
                {
                    "METHOD": "SMS_SEND_REQUEST",
                    "TYPE": "REQUEST",
                    "SERIAL": serial % 65535 + 1,
                    "TIME": f"w{worker}-{serial}",
                    "AUTH_KEY": key,
                    "ROUTE_ID": route,
                    "MULTI_MSISDN_LIST": [
                        {"DEST_MSISDN": number, "COUNTRY_CODE": 852} for number in numbers
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
                for number, detail in zip(numbers, answer["DETAIL_LIST"], strict=True):
                    if detail["SMS_UID"]:
                        acked["852" + number] = detail["SMS_UID"]


@pytest.mark.slow
def test_kill_9_after_burst_loses_nothing(database_url: str) -> None:
    store = Store.open(database_url)
    seeded = seed_customer(store.engine, balance_micros=10**12)
    store.close()
    port = free_port()
    proc = start_server(database_url, port)
    acked: dict[str, str] = {}  # number → SMS_UID

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
    assert len(set(acked.values())) == len(acked)  # no SMS_UID answered twice

    # Restart the server on the same store: it must come up and serve.
    proc = start_server(database_url, port)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)

    store = Store.open(database_url)
    m = tables.messages.c
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(m.sms_uid, m.country_code, m.dest_msisdn)).all()
            fees = conn.execute(select(func.sum(m.fee_micros))).scalar() or 0
        number_of = {uid: f"{cc}{number}" for uid, cc, number in rows}
        missing = [uid for number, uid in acked.items() if number_of.get(uid) != number]
        assert missing == []  # every acknowledged SMS_UID stored, for its number
        per_number = Counter(number_of.values())
        assert [n for n, count in per_number.items() if count > 1] == []  # none stored twice
        assert store.customer_balance(seeded.customer_id) == 10**12 - fees
    finally:
        store.close()
