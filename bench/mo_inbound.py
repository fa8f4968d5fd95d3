"""Inbound messages (MO), carrier to customer, durable (issue 15, "Figures").

The SMSC simulator (in this process, on its own event loop thread: it plays the carrier and
originates the handsets' messages) sends ``--n`` MO deliver_sm to `cloudsms serve` (its default
layout, durable SQLite), which stores each before its deliver_sm_resp, routes it by inbound
number and pushes SMS_PUSH_MO to the customer's callback (the lean sink of ``bench/e2e.py``,
another process). Prints MOs/s from the first deliver_sm to the last push received, and the
platform's CPU per MO (the serve process and its worker child).

    .venv/bin/python bench/mo_inbound.py [--n 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from e2e import BIN, SINK, free_port, process_cpu, seed, sink_count, stop_all, wait_port
from machine import calibration
from smpp_customer import family

from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage.store import Store

#: The report sink, keyed by MO_UID for MO pushes.
MO_SINK = SINK.replace('packet["SMS_UID"]', 'packet.get("MO_UID") or packet["SMS_UID"]')
NUMBER = "85230001234"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    if not 1 <= args.n <= 200_000:
        raise SystemExit("--n is 1 to 200,000")
    print(calibration())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sim = SmscSimulator("127.0.0.1", 0, accounts={"bench": "bench"})
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(10)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'mo.db'}"
        sink_port, api_port = free_port(), free_port()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            sink = subprocess.Popen([sys.executable, "-c", MO_SINK, str(sink_port)])
            procs.append(sink)
            wait_port(sink_port, sink)
            seed(url, sim.port, f"http://127.0.0.1:{sink_port}/mo")
            store = Store.open(url)
            try:
                store.add_inbound_number(NUMBER, "", "bench")
            finally:
                store.close()
            env = {
                **os.environ,
                "CLOUDSMS_DATABASE_URL": url,
                "CLOUDSMS_PORT": str(api_port),
                "CLOUDSMS_LOG_LEVEL": "warning",
                "CLOUDSMS_ADMIN_ENABLED": "false",
            }
            serve = subprocess.Popen([str(BIN / "cloudsms"), "serve"], env=env)
            procs.append(serve)
            wait_port(api_port, serve)

            async def send(n: int, offset: int) -> None:
                for i in range(offset, offset + n):
                    sim.send_mo(f"8526{i:07d}", NUMBER, f"Reply {i}: yes, see you at {i % 24}h")

            deadline = time.monotonic() + 30
            while True:  # until the platform's connector is bound to receive
                try:
                    asyncio.run_coroutine_threadsafe(send(1, 0), loop).result(5)
                    break
                except ValueError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the platform never bound to the simulator") from None
                    time.sleep(0.1)
            while sink_count(sink_port) < 1:
                time.sleep(0.05)
            pids = family(serve.pid)
            cpu0 = sum(process_cpu(p) for p in pids)
            started = time.monotonic()
            asyncio.run_coroutine_threadsafe(send(args.n, 1), loop).result(60)
            last, since = -1, time.monotonic()
            while (got := sink_count(sink_port) - 1) < args.n and time.monotonic() - since < 20:
                if got != last:
                    last, since = got, time.monotonic()
                time.sleep(0.05)
            span = time.monotonic() - started
            cpu = sum(process_cpu(p) for p in pids) - cpu0
            print(f"{args.n:,} MOs, simulator → platform (stored, routed) → SMS_PUSH_MO to a sink")
            print(f"  pushed {got:,}/{args.n:,}: {got / span:,.0f} MOs/s end to end ({span:.1f} s)")
            print(f"  platform CPU {cpu:.1f} s over {len(pids)} processes:"
                  f" {cpu / max(got, 1) * 1e6:,.0f} µs per MO")  # fmt: skip
        finally:
            stop_all(procs)
            asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
