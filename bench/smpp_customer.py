"""A customer's ESME over our SMPP server, end to end (issue 15, "Figures").

ESME --submit_sm--> `cloudsms serve` (its default layout, durable SQLite) --submit_sm--> the SMSC
simulator (`cloudsms smsc-sim`, another process) --deliver_sm receipt--> the platform
--deliver_sm receipt--> the ESME. Three processes on 127.0.0.1 plus this one, which is the ESME
(one transceiver session, registered_delivery 1, a window of outstanding submits).

It prints, for a saturating run (``--n`` submits as fast as the window allows): submits/s,
end-to-end messages/s (first submit to last receipt), submit_sm_resp latency p50/p99, and the
platform's CPU per message (every process of `serve`, its worker child included); then, at a
fixed rate (``--rate`` submits/s for ``--rate-n`` submits), the submit_sm_resp latency p50/p99.

    .venv/bin/python bench/smpp_customer.py [--n 20000] [--window 100] [--rate 1000]
        [--answer-delay-ms 20]   # the ESME answers each receipt 20 ms late (a network away)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from e2e import BIN, free_port, process_cpu, seed, stop_all, wait_port
from machine import calibration

from cloudsms.services.operator import Operator
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.pdu import BindTransceiver, SubmitSm
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the serve process and its worker child)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            out += family(int(child))
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


class Esme:
    """One bound transceiver session: submits with a window, receipts counted as they come."""

    def __init__(self, port: int, answer_delay_s: float = 0.0) -> None:
        self.port = port
        #: How long each deliver_sm waits for its answer: a remote ESME's round trip.
        self.answer_delay_s = answer_delay_s
        self.receipts = 0
        self.last_receipt = 0.0
        #: Submits answered ESME_RTHROTTLED (the server's window of 100 unanswered was full:
        #: the fixed-rate phase has no window of its own, so a stall over 100 ms shows here).
        self.throttled = 0
        self.link: EsmeLink | None = None

    async def on_deliver(self, pdu: Any) -> None:
        if self.answer_delay_s:
            await asyncio.sleep(self.answer_delay_s)
        self.receipts += 1
        self.last_receipt = time.monotonic()

    async def bind(self) -> None:
        loop = asyncio.get_running_loop()
        _, self.link = await loop.create_connection(
            lambda: EsmeLink(
                name="bench", on_deliver=self.on_deliver, response_timeout_s=30, enquire_link_s=0
            ),
            "127.0.0.1",
            self.port,
        )
        await self.link.bind(
            BindTransceiver(sequence_number=1, system_id="bench1", password="benchpw")
        )

    async def submit(self, n: int, latencies: list[float]) -> None:
        link = self.link
        assert link is not None
        dest = 85260000000 + (n % 10_000_000)
        started = time.monotonic()
        resp = await link.send_request(
            SubmitSm(
                sequence_number=link.session.sequence.next(),
                source_addr="BENCH",
                destination_addr=str(dest),
                short_message=b"Your code is %06d" % (n % 1_000_000),
                registered_delivery=1,
            )
        )
        latencies.append(time.monotonic() - started)
        if resp.command_status == CommandStatus.ESME_RTHROTTLED:
            self.throttled += 1
        elif resp.command_status != 0:
            raise SystemExit(f"submit_sm refused: status {resp.command_status:#x}")

    async def saturate(self, count: int, window: int) -> tuple[float, list[float]]:
        """``count`` submits, ``window`` outstanding; returns (seconds of submitting, latencies)."""
        latencies: list[float] = []
        slots = asyncio.Semaphore(window)

        async def one(n: int) -> None:
            try:
                await self.submit(n, latencies)
            finally:
                slots.release()

        started = time.monotonic()
        tasks = []
        for n in range(count):
            await slots.acquire()
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        return time.monotonic() - started, latencies

    async def paced(self, count: int, rate: float, offset: int) -> list[float]:
        latencies: list[float] = []
        tasks = []
        started = time.monotonic()
        for n in range(count):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.submit(offset + n, latencies)))
        await asyncio.gather(*tasks)
        return latencies

    async def wait_receipts(self, expected: int, quiet_s: float = 20) -> None:
        last, since = -1, time.monotonic()
        while self.receipts < expected and time.monotonic() - since < quiet_s:
            if self.receipts != last:
                last, since = self.receipts, time.monotonic()
            await asyncio.sleep(0.05)


async def measure(port: int, serve_pid: int, args: argparse.Namespace) -> None:
    esme = Esme(port, args.answer_delay_ms / 1000)
    await esme.bind()
    await esme.saturate(200, 20)
    await esme.wait_receipts(200)
    pids = family(serve_pid)
    cpu0 = sum(process_cpu(p) for p in pids)
    received0 = esme.receipts
    started = time.monotonic()
    seconds, latencies = await esme.saturate(args.n, args.window)
    await esme.wait_receipts(received0 + args.n - esme.throttled)
    cpu = sum(process_cpu(p) for p in pids) - cpu0
    got = esme.receipts - received0
    span = esme.last_receipt - started
    print(
        f"saturating: {args.n:,} submits over one TRX session, window {args.window},"
        f" receipts answered after {args.answer_delay_ms:g} ms"
    )
    print(
        f"  submits/s {args.n / seconds:,.0f}; receipts {got:,}/{args.n - esme.throttled:,};"
        f" throttled {esme.throttled:,}"
    )
    print(f"  end to end {got / span:,.0f} messages/s ({span:.1f} s first submit → last receipt)")
    print(
        f"  submit_sm_resp p50 {statistics.median(latencies) * 1000:.1f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    print(
        f"  platform CPU {cpu:.1f} s over {len(pids)} processes:"
        f" {cpu / max(got, 1) * 1e6:,.0f} µs per message (accept + submit + receipt + receipt out)"
    )
    throttled0 = esme.throttled
    paced = await esme.paced(args.rate_n, args.rate, args.n)
    throttled = esme.throttled - throttled0
    await esme.wait_receipts(received0 + got + args.rate_n - throttled)
    print(f"fixed rate: {args.rate_n:,} submits at {args.rate:,.0f}/s")
    print(
        f"  submit_sm_resp p50 {statistics.median(paced) * 1000:.1f} ms,"
        f" p99 {percentile(paced, 0.99) * 1000:.1f} ms;"
        f" receipts {esme.receipts - received0 - got:,}/{args.rate_n - throttled:,};"
        f" throttled {throttled:,}"
    )
    assert esme.link is not None
    esme.link.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--rate-n", type=int, default=5000)
    parser.add_argument(
        "--answer-delay-ms",
        type=float,
        default=0.0,
        help="answer each deliver_sm this late, as an ESME across a network would (0-1000)",
    )
    args = parser.parse_args()
    if not (1 <= args.n <= 1_000_000 and 1 <= args.rate_n <= 100_000):
        raise SystemExit("--n up to 1,000,000 and --rate-n up to 100,000")
    if not 0 <= args.answer_delay_ms <= 1000:
        raise SystemExit("--answer-delay-ms from 0 to 1000")
    print(calibration())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'smpp.db'}"
        sim_port, smpp_port, api_port = free_port(), free_port(), free_port()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            sim = subprocess.Popen(
                [str(BIN / "cloudsms"), "smsc-sim", "--port", str(sim_port),
                 "--account", "bench:bench", "--quiet", "--record-limit", "0"]
            )  # fmt: skip
            procs.append(sim)
            wait_port(sim_port, sim)
            seed(url, sim_port, None)
            store = Store.open(url)
            try:
                Operator(store, actor="bench").add_smpp_account(
                    "bench", "bench1", password="benchpw", route="BENCH", throughput=0
                )
            finally:
                store.close()
            env = {
                **os.environ,
                "CLOUDSMS_DATABASE_URL": url,
                "CLOUDSMS_PORT": str(api_port),
                "CLOUDSMS_SMPP_PORT": str(smpp_port),
                "CLOUDSMS_LOG_LEVEL": "warning",
                "CLOUDSMS_MAX_BACKLOG": "100000000",
                "CLOUDSMS_ADMIN_ENABLED": "false",
            }
            serve = subprocess.Popen([str(BIN / "cloudsms"), "serve"], env=env)
            procs.append(serve)
            wait_port(smpp_port, serve)
            time.sleep(1.0)  # the connector binds to the simulator
            asyncio.run(measure(smpp_port, serve.pid, args))
        finally:
            stop_all(procs)


if __name__ == "__main__":
    main()
