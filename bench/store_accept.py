"""How fast the store makes accepted packets durable, per engine.

    .venv/bin/python bench/store_accept.py                 # SQLite file + local PostgreSQL
    .venv/bin/python bench/store_accept.py --no-postgres   # SQLite only
    .venv/bin/python bench/store_accept.py --scale 0.2     # fewer packets (quick look)

SQLite is a file in WAL mode with ``synchronous=FULL`` (every commit fsyncs), PostgreSQL the
server at ``CLOUDSMS_BENCH_PG_URL`` (default: postgresql://postgres@127.0.0.1:5432/test; a scratch
database is created and dropped) with its default ``synchronous_commit=on``. Both are durable.

Scenarios (every packet replay-protected, every message charged, as in production):

* ``accept_packets`` with packets of 1 and of 200 recipients, one packet per transaction (no
  group commit) and many per transaction (what the writer does under load);
* ``GroupCommitWriter`` end to end from asyncio: N tasks each ``await writer.write(packet)``
  with a bounded number in flight (like N concurrent HTTP connections).

Targets (SPEC §7): the API must reach ≥ 4,000 one-recipient packets/s and ≥ 40,000 recipients/s
end to end on 2 cores, so the store must do far better.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter

WINDOW_MS = 86_400_000
UIDS = UidGenerator()
ANSWER = b'{"METHOD":"SMS_SEND_REQUEST","TYPE":"ANSWER","SERIAL":1,"RESULT_CODE":1,' + b"x" * 120


def make_packets(customer_id: int, count: int, recipients: int) -> list[PacketWrite]:
    now = time.time_ns() // 1_000_000
    packets = []
    for uids in (UIDS.next_uids(recipients) for _ in range(count)):
        messages = tuple(
            NewMessage(
                sms_uid=uid,
                customer_id=customer_id,
                serial=1,
                country_code=852,
                dest_msisdn=f"9{i:07d}",
                route_name="VerifyCode_516",
                sender="CloudSMS",
                content="【云短信】您的验证码是 123456，5分钟内有效。",
                encoding="ucs2",
                segments=1,
                priority=0,
                send_at_ms=now,
                customer_body='{"order":"A-1"}',
                state=MessageState.ACCEPTED,
                result_desc=None,
                detail=None,
                fee_micros=52_500,
                currency="HKD",
                created_ms=now,
            )
            for i, uid in enumerate(uids)
        )
        packets.append(
            PacketWrite(
                customer_id=customer_id,
                packet_key=secrets.token_hex(32),
                messages=messages,
                answer=ANSWER,
                created_ms=now,
            )
        )
    return packets


def add_customer(store: Store) -> int:
    with store.engine.begin() as conn:
        pk = conn.execute(
            tables.customers.insert().values(
                name=f"bench-{secrets.token_hex(4)}",
                auth_key=secrets.token_hex(64),
                enabled=True,
                currency="HKD",
                balance_micros=10**15,
                credit_limit_micros=0,
                report_intermediate=False,
                created_ms=0,
                updated_ms=0,
            )
        ).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def report(label: str, packets: int, recipients: int, seconds: float) -> None:
    print(
        f"  {label:<44} {packets / seconds:>10,.0f} packets/s {recipients / seconds:>11,.0f}"
        f" recipients/s   ({packets:,} packets in {seconds:.2f} s)",
        flush=True,
    )


def bench_direct(store: Store, recipients: int, batch: int, packets: int) -> None:
    cid = add_customer(store)
    work = make_packets(cid, packets, recipients)
    start = time.perf_counter()
    for i in range(0, len(work), batch):
        store.accept_packets(work[i : i + batch], replay_window_ms=WINDOW_MS)
    elapsed = time.perf_counter() - start
    report(
        f"accept_packets {recipients:>3} rcpt x {batch:>3}/tx",
        packets,
        packets * recipients,
        elapsed,
    )


def bench_writer(store: Store, recipients: int, packets: int, in_flight: int) -> None:
    cid = add_customer(store)
    work = make_packets(cid, packets, recipients)

    async def run() -> tuple[float, int]:
        writer = GroupCommitWriter(store, replay_window_ms=WINDOW_MS)
        writer.start()
        queue = iter(work)

        async def client() -> None:
            for packet in queue:
                await writer.write(packet)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
        await writer.close()
        return elapsed, writer.stats().batches

    elapsed, batches = asyncio.run(run())
    label = f"writer {recipients:>3} rcpt, {in_flight} in flight ({packets / batches:.0f}/tx)"
    report(label, packets, packets * recipients, elapsed)


def run_engine(name: str, url: str, scale: float) -> None:
    print(f"{name}: {url}", flush=True)
    store = Store.open(url)
    try:

        def n(count: int) -> int:
            return max(1, int(count * scale))

        bench_direct(store, 1, 1, n(1_000))
        bench_direct(store, 1, 256, n(40_000))
        bench_direct(store, 200, 1, n(200))
        bench_direct(store, 200, 16, n(800))
        bench_writer(store, 1, n(40_000), 256)
        bench_writer(store, 200, n(800), 32)
    finally:
        store.close()


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    name = f"cloudsms_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply packet counts")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run_engine(
                "sqlite (WAL, synchronous=FULL)", f"sqlite:///{Path(tmp) / 'b.db'}", args.scale
            )
    if not args.no_postgres:
        admin = os.environ.get("CLOUDSMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        with scratch_postgres(admin) as url:
            run_engine("postgresql (synchronous_commit=on)", url, args.scale)


if __name__ == "__main__":
    main()
