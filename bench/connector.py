"""Connector throughput: submit_sm/s acknowledged by the simulator on loopback, per window size.

Usage: .venv/bin/python bench/connector.py [SECONDS] [--carrier]   (default 5 s per figure)

The SMSC simulator runs in another process (``cloudsms smsc-sim``, uvloop, recording off); this
process runs one SmppClient (uvloop) with ``window + window // 2`` tasks submitting in a loop,
so the window stays full. For each window (10, 50, 100), without and with a receipt per message
(registered_delivery 1: the simulator answers, then sends a deliver_sm the client acknowledges
after its on_deliver callback), it prints submit_sm acknowledged per second over the measured
interval (after a 1 s warm-up), receipts per second, and the CPU time each process used per
message. Target (SPEC §7, issue 3): >= 30,000 submit_sm/s for the bare connector at window 100.

``--carrier`` measures the worker's whole carrier path instead, without the store: a real
dispatcher ``Link`` (window 100) takes claimed messages from its queue, builds the submit_sm
(``build_submits``), submits it, reads the submit_sm_resp, parses each deliver_sm receipt and
hands the outcome and the ``ReceiptEvent`` to a recorder that completes at once. It prints the
worker process's CPU time per message, the event-loop share of ``bench/pipeline.py``'s
figure that does not depend on the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from cloudsms.domain.pipeline import OutboundMessage, ReceiptEvent
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.smpp.constants import Npi, Ton
from cloudsms.smpp.pdu import DataSm, DeliverSm, SubmitSm
from cloudsms.transport import SmppClient, run
from cloudsms.workers.link import Link

WINDOWS = (10, 50, 100)
WARMUP_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("cloudsms")
    proc = subprocess.Popen(
        [
            str(exe),
            "smsc-sim",
            "--port",
            str(port),
            "--account",
            "bench:bench",
            "--quiet",
            "--record-limit",
            "0",
        ],
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def child_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(port: int, window: int, receipts: bool, seconds: float, sim_pid: int) -> str:
    received = 0

    async def on_deliver(pdu: DeliverSm | DataSm) -> None:
        nonlocal received
        received += 1

    config = ConnectorConfig(
        id=1,
        name=f"bench-w{window}",
        host="127.0.0.1",
        port=port,
        system_id="bench",
        password="bench",
        window=window,
    )
    client = SmppClient(config, on_deliver=on_deliver)
    await client.start()
    if not await client.wait_bound(5):
        raise RuntimeError("could not bind to the simulator")
    pdu = SubmitSm(
        sequence_number=0,
        source_addr_ton=Ton.ALPHANUMERIC,
        source_addr="CloudSMS",
        dest_addr_ton=Ton.INTERNATIONAL,
        dest_addr_npi=Npi.ISDN,
        destination_addr="6591234567",
        registered_delivery=1 if receipts else 0,
        short_message=b"Your verification code is 123456. Do not share it.",
    )
    acked = 0
    running = True

    async def worker() -> None:
        nonlocal acked
        while running:
            await client.submit(pdu)
            acked += 1

    tasks = [asyncio.create_task(worker()) for _ in range(window + window // 2)]
    await asyncio.sleep(WARMUP_S)
    a0, r0, t0 = acked, received, time.perf_counter()
    c0, s0 = self_cpu(), child_cpu(sim_pid)
    await asyncio.sleep(seconds)
    a1, r1, t1 = acked, received, time.perf_counter()
    c1, s1 = self_cpu(), child_cpu(sim_pid)
    running = False
    await asyncio.gather(*tasks)
    if receipts:  # let the last receipts arrive before unbinding
        deadline = time.monotonic() + 5
        while received < acked and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await client.stop()
    elapsed = t1 - t0
    n = max(1, a1 - a0)
    return (
        f"{window:>6}  {'yes' if receipts else 'no':>8}  {(a1 - a0) / elapsed:>12,.0f}  "
        f"{(r1 - r0) / elapsed:>10,.0f}  {(c1 - c0) / n * 1e6:>11.1f}  "
        f"{(s1 - s0) / n * 1e6:>9.1f}"
    )


class _NullRecorder:
    """Stands in for the DispatchRecorder: counts what it is given and completes at once."""

    def __init__(self) -> None:
        self.outcomes = 0
        self.receipts = 0
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.set_result(None)

    def record(self, event: object) -> asyncio.Future[None]:
        if type(event) is ReceiptEvent:
            self.receipts += 1
        else:
            self.outcomes += 1
        return self._done


class _Dispatcher:
    """What a ``Link`` uses of the Dispatcher: its client factory and its recorder."""

    def __init__(self) -> None:
        self.client_factory = SmppClient
        self.recorder = _NullRecorder()
        #: Set by the link when its queue falls to half (the real dispatcher claims more).
        self.wanted = asyncio.Event()

    def wake(self) -> None:
        self.wanted.set()

    def retry(self, message: OutboundMessage, detail: str, delay_ms: int | None = None) -> None:
        raise RuntimeError(f"{message.sms_uid}: {detail}")  # no failure is expected here

    def give_back(self, message: OutboundMessage, *, detail: str, delay_ms: int = 0) -> None:
        """Messages in flight when the link stops: nothing to give back to."""


async def measure_carrier(port: int, seconds: float, sim_pid: int) -> str:
    window = 100
    config = ConnectorConfig(
        id=1, name="bench-carrier", host="127.0.0.1", port=port, system_id="bench",
        password="bench", window=window,
    )  # fmt: skip
    dispatcher = _Dispatcher()
    link = Link(config, dispatcher)  # type: ignore[arg-type]
    await link.start()
    if not await link.client.wait_bound(5):
        raise RuntimeError("could not bind to the simulator")
    message = OutboundMessage(
        "bench", 1, 852, "61234567", "BENCH", "CloudSMS", "Your verification code is 123456.",
        "gsm7", 1, 0, 0, 0,
    )  # fmt: skip

    async def feed() -> None:
        while True:
            while not link.full():
                link.put(message)
            dispatcher.wanted.clear()
            await dispatcher.wanted.wait()

    feeder = asyncio.create_task(feed())
    recorder = dispatcher.recorder
    await asyncio.sleep(WARMUP_S)
    a0, r0, t0 = recorder.outcomes, recorder.receipts, time.perf_counter()
    c0, s0 = self_cpu(), child_cpu(sim_pid)
    await asyncio.sleep(seconds)
    a1, r1, t1 = recorder.outcomes, recorder.receipts, time.perf_counter()
    c1, s1 = self_cpu(), child_cpu(sim_pid)
    feeder.cancel()
    deadline = time.monotonic() + 5  # let the last receipts arrive before unbinding
    while recorder.receipts < recorder.outcomes and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await link.stop()
    elapsed = t1 - t0
    n = max(1, r1 - r0)
    return (
        f"{(a1 - a0) / elapsed:>10,.0f}  {(r1 - r0) / elapsed:>10,.0f}  "
        f"{(c1 - c0) / n * 1e6:>13.1f}  {(s1 - s0) / n * 1e6:>10.1f}"
    )


async def main(seconds: float, carrier: bool) -> None:
    port = free_port()
    sim = start_simulator(port)
    try:
        print(f"connector bench: {seconds:g} s per figure, simulator pid {sim.pid}, port {port}")
        if carrier:
            print("carrier path (dispatcher Link, window 100, receipt per message, no store)")
            print("submitted/s  receipts/s  worker µs/msg  sim µs/msg")
            print(await measure_carrier(port, seconds, sim.pid), flush=True)
            return
        print("window  receipts  submit_sm/s   receipts/s  client µs/msg  sim µs/msg")
        for receipts in (False, True):
            for window in WINDOWS:
                print(await measure(port, window, receipts, seconds, sim.pid), flush=True)
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seconds", nargs="?", type=float, default=5.0)
    parser.add_argument("--carrier", action="store_true", help="the dispatcher's carrier path")
    args = parser.parse_args()
    run(main(args.seconds, args.carrier))
