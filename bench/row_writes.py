"""Row writes per message over its whole life, by table (issue 14: "at most three row writes per
single-segment message").

Runs the real pipeline — `cloudsms serve` (its default layout, durable SQLite), the SMSC
simulator (`cloudsms smsc-sim`, immediate receipts) and a callback sink — sends ``--n``
single-recipient packets over HTTP, waits until every report reached the sink, and counts every
INSERT, UPDATE and DELETE the platform made on the tables of the hot path. The count is made by
triggers added to the database file before the platform starts (each writes a counter row, so
this is a counting run, not a speed run). Counts are what the code does, not what the machine
does: they do not drift between runs, except for the per-batch rows (the balance, the report
SERIAL counter), which shrink as batches grow under load.

    .venv/bin/python bench/row_writes.py [--n 2000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from e2e import BIN, SINK, free_port, seed, sink_count, stop_all, wait_port

#: Tables a message's life writes to (the hot path), and the per-batch ones beside them.
HOT_TABLES = (
    "messages",
    "message_parts",
    "receipts",
    "report_outbox",
    "report_attempts",
    "replays",
    "customers",
    "report_serials",
)


def add_counters(db: Path) -> None:
    """Triggers that count each table's inserts, updates and deletes in ``bench_row_writes``."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE bench_row_writes (tbl TEXT, op TEXT, n INTEGER)")
        for table in HOT_TABLES:
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.execute("INSERT INTO bench_row_writes VALUES (?, ?, 0)", (table, op))
                conn.execute(
                    f"CREATE TRIGGER bench_{table}_{op.lower()} AFTER {op} ON {table}"
                    f" BEGIN UPDATE bench_row_writes SET n = n + 1"
                    f" WHERE tbl = '{table}' AND op = '{op}'; END"
                )


def index_counts(db: Path) -> dict[str, int]:
    """Indexes per table (a row write also writes one B-tree entry per index it is in)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT tbl_name, count(*) FROM sqlite_master WHERE type = 'index' GROUP BY tbl_name"
        ).fetchall()
    return {str(t): int(n) for t, n in rows}


def packet_body(key: str, i: int) -> bytes:
    """A single-recipient SMS_SEND_REQUEST, unique (TIME) so replay protection keeps it."""
    return orjson.dumps(
        {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": i % 65535 + 1,
            "TIME": f"rows-{i}", "AUTH_KEY": key, "ROUTE_ID": "BENCH", "VERSION": "2021-01-01",
            "SMS_CONTENT": "Your verification code is 123456.",
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": f"6{i % 10**7:07d}", "COUNTRY_CODE": 852}],
        }
    )  # fmt: skip


async def send(url: str, key: str, n: int, concurrency: int) -> int:
    """``n`` single-recipient packets over ``concurrency`` keep-alive connections."""
    accepted = 0
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one_connection() -> None:
            nonlocal accepted
            for i in counter:
                answer = (await client.post(url, content=packet_body(key, i))).json()
                accepted += answer["RESULT_CODE"] == 1

        await asyncio.gather(*(one_connection() for _ in range(concurrency)))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="row-writes-"))
    db = workdir / "rows.db"
    url = f"sqlite:///{db}"
    sim_port, sink_port, api_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "cloudsms"),
                    "smsc-sim",
                    "--port",
                    str(sim_port),
                    "--account",
                    "bench:bench",
                    "--quiet",
                    "--record-limit",
                    "0",
                ]
            )
        )
        procs.append(subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)]))
        wait_port(sim_port, procs[0])
        wait_port(sink_port, procs[1])
        key = seed(url, sim_port, f"http://127.0.0.1:{sink_port}/dr")
        add_counters(db)
        env = {
            **os.environ,
            "CLOUDSMS_DATABASE_URL": url,
            "CLOUDSMS_PORT": str(api_port),
            "CLOUDSMS_LOG_LEVEL": "warning",
            "CLOUDSMS_ADMIN_ENABLED": "false",
        }
        procs.append(subprocess.Popen([str(BIN / "cloudsms"), "serve"], env=env))
        wait_port(api_port, procs[2])
        time.sleep(1.0)  # links bind
        accepted = asyncio.run(
            send(f"http://127.0.0.1:{api_port}/dave/io", key, args.n, args.concurrency)
        )
        deadline = time.monotonic() + 120
        while sink_count(sink_port) < accepted and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1.5)  # the last report outcomes are written after the sink answered
        reported = sink_count(sink_port)
    finally:
        stop_all(procs)
    with sqlite3.connect(db) as conn:
        counts = conn.execute("SELECT tbl, op, n FROM bench_row_writes WHERE n > 0").fetchall()
    indexes = index_counts(db)
    print(f"{accepted:,} single-recipient messages accepted, {reported:,} reported")
    print(f"{'table':<16} {'op':<7} {'rows/message':>12} {'indexes':>8}")
    total = 0
    for table, op, n in sorted(counts):
        total += n
        print(f"{table:<16} {op:<7} {n / max(accepted, 1):>12.2f} {indexes.get(table, 0):>8}")
    print(f"{'total':<24} {total / max(accepted, 1):>12.2f}")


if __name__ == "__main__":
    main()
