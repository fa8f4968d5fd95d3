"""SMPP fuzz run: random and mutated PDU streams through the Decoder and a live simulator socket.

Uses the generators and the decoder invariant of ``tests/unit/smpp/test_smpp_fuzz_stream.py``
(the bounded version in the suite), at a larger scale:

1. **decoder**: ``--cases`` streams (random bytes, valid headers over random bodies, mutated
   real PDUs), each fed whole, one byte at a time and in random cuts. A failure is any
   exception other than ``RemoteProtocolError`` or a broken invariant; a hang is a case that
   takes longer than ``--hang-s``.
2. **live**: ``--live-cases`` streams sent over TCP to an ``SmscSimulator`` running in its own
   thread and event loop (so that a stuck server cannot stall the client), after a valid bind
   or not, whole or byte at a time, followed by an enquire_link. A failure is an exception that
   escaped to the simulator's event loop or an ERROR logged by cloudsms; a hang is a control
   connection (bind + enquire_link, every ``--probe-every`` cases and at the end) that gets no
   answer within ``--hang-s``.

    .venv/bin/python bench/fuzz_smpp.py [--cases 20000] [--live-cases 2000] [--seed 1]

Prints cases run, failures and hangs per phase; exits 1 if any.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "smpp"))

from test_smpp_fuzz_stream import GENERATORS, check_decoder, chunkings

from cloudsms.simulator.server import SmscSimulator
from cloudsms.smpp import NEED_DATA, Decoder, encode
from cloudsms.smpp.pdu import BindTransceiver, EnquireLink, EnquireLinkResp

BIND = encode(BindTransceiver(sequence_number=1, system_id="fuzz", password="pw"))
PROBE_SEQ = 0x7FFFFFF0


def decoder_phase(cases: int, seed: int, hang_s: float) -> tuple[int, list[str], list[str]]:
    run = 0
    failures: list[str] = []
    hangs: list[str] = []
    for name, generate in GENERATORS.items():
        rng = random.Random(f"{seed}-{name}")
        for i in range(cases // len(GENERATORS)):
            stream = generate(rng)
            for how, chunks in chunkings(rng, stream):
                started = time.perf_counter()
                try:
                    check_decoder(chunks)
                except Exception as exc:
                    failures.append(f"{name}#{i} {how}: {exc!r} stream={stream[:64].hex()}")
                if time.perf_counter() - started > hang_s:
                    hangs.append(f"{name}#{i} {how}: {time.perf_counter() - started:.2f}s")
                run += 1
    return run, failures, hangs


class SimulatorThread:
    """The simulator in its own thread and loop; collects what escapes to its loop or log."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        self.simulator: SmscSimulator | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        handler = logging.Handler(logging.ERROR)
        handler.emit = lambda record: self.errors.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("cloudsms").addHandler(handler)
        logging.getLogger("cloudsms").setLevel(logging.ERROR)  # protocol warnings are expected

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        detail = "".join(traceback.format_exception(exc)) if exc else context.get("message")
        self.errors.append(str(detail))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.simulator = SmscSimulator(
                "127.0.0.1", 0, accounts={"fuzz": "pw"}, record_limit=1000, bind_timeout_s=5
            )
            await self.simulator.start()

        self.loop.run_until_complete(start())
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> int:
        self.thread.start()
        self.ready.wait(10)
        assert self.simulator is not None
        return self.simulator.port

    def stop(self) -> None:
        assert self.simulator is not None
        future = asyncio.run_coroutine_threadsafe(self.simulator.stop(), self.loop)
        future.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def send_case(port: int, stream: bytes, bytewise: bool, bind: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if bind:
            writer.write(BIND)
        if bytewise:
            for i in range(len(stream)):
                writer.write(stream[i : i + 1])
                await writer.drain()
        else:
            writer.write(stream)
        writer.write(encode(EnquireLink(sequence_number=PROBE_SEQ)))
        await writer.drain()
        # Read what the server says until it closes or goes quiet.
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.05)
            except TimeoutError:
                break
            if not data:
                break
    except (ConnectionError, OSError):
        pass  # the server closing on us is an allowed outcome
    finally:
        writer.close()


async def probe(port: int, hang_s: float) -> bool:
    """A clean client: bind, enquire_link; True when both are answered in time."""
    try:
        async with asyncio.timeout(hang_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(BIND + encode(EnquireLink(sequence_number=PROBE_SEQ)))
            decoder = Decoder()
            got: list[Any] = []
            while not any(isinstance(p, EnquireLinkResp) for p in got):
                data = await reader.read(65536)
                if not data:
                    return False
                decoder.receive_data(data)
                while (pdu := decoder.next_pdu()) is not NEED_DATA:
                    got.append(pdu)
            writer.close()
            return got[0].command_status == 0
    except (TimeoutError, OSError):
        return False


async def live_phase(
    port: int, cases: int, seed: int, hang_s: float, probe_every: int
) -> tuple[int, list[str]]:
    rng = random.Random(f"{seed}-live")
    generators = list(GENERATORS.items())
    hangs: list[str] = []
    for i in range(cases):
        name, generate = generators[i % len(generators)]
        stream = generate(rng)
        bytewise = rng.random() < 0.3
        try:
            await asyncio.wait_for(send_case(port, stream, bytewise, rng.random() < 0.7), 30)
        except TimeoutError:
            hangs.append(f"live {name}#{i}: client timed out")
        if (i + 1) % probe_every == 0 and not await probe(port, hang_s):
            hangs.append(f"live {name}#{i}: control probe unanswered")
    if not await probe(port, hang_s):
        hangs.append("final control probe unanswered")
    return cases, hangs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--live-cases", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang-s", type=float, default=2.0)
    parser.add_argument("--probe-every", type=int, default=50)
    args = parser.parse_args()

    started = time.monotonic()
    run, failures, hangs = decoder_phase(args.cases, args.seed, args.hang_s)
    print(
        f"decoder: {run:,} cases (whole, byte-at-a-time, random cuts) in "
        f"{time.monotonic() - started:.1f}s: {len(failures)} failures, {len(hangs)} hangs"
    )
    for line in (failures + hangs)[:20]:
        print("  ", line)

    simulator = SimulatorThread()
    port = simulator.start()
    started = time.monotonic()
    live_run, live_hangs = asyncio.run(
        live_phase(port, args.live_cases, args.seed, args.hang_s, args.probe_every)
    )
    simulator.stop()
    print(
        f"live simulator: {live_run:,} streams over TCP in {time.monotonic() - started:.1f}s: "
        f"{len(simulator.errors)} failures, {len(live_hangs)} hangs"
    )
    for line in (simulator.errors + live_hangs)[:20]:
        print("  ", line)
    total = len(failures) + len(hangs) + len(simulator.errors) + len(live_hangs)
    print(f"total: {run + live_run:,} cases, {total} failures/hangs")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
