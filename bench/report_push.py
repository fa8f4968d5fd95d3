"""Report-push benchmark: CPU time of the platform per delivery report pushed, in µs.

``ReportPusher`` (cloudsms/workers/webhooks.py) runs on uvloop, as in ``cloudsms serve``,
against a pre-filled outbox and a real HTTP/1.1 callback sink in another process (a lean
raw-asyncio server that answers the UIP ANSWER with RESULT_CODE 1, keep-alive), so that the
sink's CPU is not counted; customer k's callback is 127.0.0.k, so each customer has its own
connection pool, as customers' hosts do. The outbox is an in-memory stand-in for the store's
``claim_due_reports`` / ``record_report_results`` (same signatures, negligible cost): the figure
is the pusher's own cost — claiming bookkeeping, building each SMS_PUSH_REPORT body, the POST
(``transport/http_client.py``), reading and judging the ANSWER, recording outcomes — not the
database's.

It prints µs of CPU (``time.process_time``, this process, all threads) per report, and the
wall-clock reports/s, for each of ``--rounds`` rounds of ``--reports`` reports (the best round
is the figure; the machine is shared). ``--profile out.txt`` also runs py-spy on the pusher
(raw format, for flame graphs or ``sort | uniq`` style reading).

    .venv/bin/python bench/report_push.py [--reports 20000] [--rounds 3] [--customers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloudsms.domain.pipeline import DueReport, ReportResult
from cloudsms.transport import run
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings

BIN = Path(sys.executable).parent

#: The sink: minimal HTTP/1.1 parsing (Content-Length bodies only), one ANSWER per request.
SINK = r"""
import asyncio, sys, uvloop
ANSWER = (b'{"METHOD":"SMS_PUSH_REPORT","TYPE":"ANSWER","SERIAL":1,'
          b'"TIME":"2025-01-01 00:00:00","RESULT_CODE":1,"RESULT_DESC":"OK"}')
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf = transport, b""
    def data_received(self, data):
        buf = self.buf + data
        out = 0
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            i = head.find(b"content-length:")
            j = head.find(b"\r\n", i)
            n = int(head[i + 15 : j if j > 0 else None]) if i >= 0 else 0
            if len(buf) < end + 4 + n:
                break
            buf = buf[end + 4 + n:]
            out += 1
        self.buf = buf
        if out:
            self.t.write(RESPONSE * out)
async def main():
    loop = asyncio.get_running_loop()
    hosts = [f"127.0.0.{k}" for k in range(1, int(sys.argv[2]) + 1)]
    server = await loop.create_server(Sink, hosts, int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
uvloop.run(main())
"""


class Outbox:
    """An in-memory outbox with the store's two pusher operations: oldest first, per-customer
    exclusion, released and retried rows back at the front (the pusher calls it from one worker
    thread at a time)."""

    def __init__(self, rows: list[DueReport]) -> None:
        self.queues: dict[int, deque[DueReport]] = {}
        for row in rows:
            self.queues.setdefault(row.customer_id, deque()).append(row)
        self.by_id = {r.id: r for r in rows}
        self.done = 0
        self.other = 0
        self.claims = 0
        self.flushes = 0

    def claim_due_reports(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 0,
        exclude_customers: Sequence[int] = (),
        claimer: int | None = None,
        hold_ms: int = 0,
    ) -> list[DueReport]:
        self.claims += 1
        queues = [q for c, q in self.queues.items() if q and c not in exclude_customers]
        taken: list[DueReport] = []
        while queues and len(taken) < limit:
            q = min(queues, key=lambda q: q[0].id)
            taken.append(q.popleft())
            if not q:
                queues.remove(q)
        return taken

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        self.flushes += 1
        back = sorted((r.id for r in results if r.outcome in ("release", "retry")), reverse=True)
        self.done += sum(1 for r in results if r.outcome == "done")
        self.other += len(results) - sum(1 for r in results if r.outcome == "done")
        for i in back:
            row = self.by_id[i]
            self.queues[row.customer_id].appendleft(row)


def make_rows(n: int, customers: int, port: int, body: str | None) -> list[DueReport]:
    rng = random.Random(1)
    now = int(time.time() * 1000)
    rows = [
        DueReport(
            id=i + 1,
            sms_uid=f"{rng.getrandbits(120):030X}",
            customer_id=1 + i % customers,
            sms_state=2,
            result_desc="DELIVERED",
            report_ms=now - 1000,
            created_ms=now - 2000,
            attempts=0,
            next_attempt_ms=now - 500,
            serial=1 + i % 65_535,
            callback_url=f"http://127.0.0.{1 + i % customers}:{port}/dr",
            auth_key="k" * 128,
            sender="CloudSMS",
            country_code=852,
            dest_msisdn=f"6{i % 10_000_000:07d}",
            customer_body=body,
            segments=1,
            fee_micros=50_000,
            currency="HKD",
        )
        for i in range(n)
    ]
    return rows


async def one_round(rows: list[DueReport]) -> tuple[float, float, Outbox]:
    outbox = Outbox(rows)
    # The figures in bench/README.md were measured with these (the former built-in defaults).
    pusher = ReportPusher(
        outbox, WebhookSettings(concurrency_per_host=8, max_queued_per_customer=64)
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await pusher.start()
    pusher.wake()
    while outbox.done < len(rows):
        await asyncio.sleep(0.01)
        if pusher.failed:
            raise SystemExit(f"{pusher.failed} pushes failed; the sink is not answering OK")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await pusher.stop()
    return cpu, wall, outbox


async def bench(args: argparse.Namespace, port: int) -> None:
    body = '{"order": "A-1", "n": [1, 2.50]}' if args.customer_body else None
    for k in range(args.rounds):
        rows = make_rows(args.reports, args.customers, port, body)
        cpu, wall, outbox = await one_round(rows)
        done = outbox.done
        print(
            f"round {k + 1}: {done:,} reports, {cpu / done * 1e6:,.1f} µs CPU per report, "
            f"{done / wall:,.0f} reports/s wall, {outbox.claims:,} claims, "
            f"{outbox.other:,} claimed and released, {outbox.flushes:,} outcome flushes"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=1, help="each on its own 127.0.0.x")
    parser.add_argument("--customer-body", action="store_true", help="a stored CUSTOMER_BODY")
    parser.add_argument("--profile", metavar="OUT", help="py-spy raw samples to this file")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port), str(args.customers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    spy: subprocess.Popen[bytes] | None = None
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        if args.profile:
            spy = subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--format", "raw", "-r", "250",
                 "-o", args.profile, "-p", str(os.getpid())],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        run(bench(args, port))
    finally:
        if spy is not None:
            spy.send_signal(2)
            spy.wait(timeout=30)
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    main()
