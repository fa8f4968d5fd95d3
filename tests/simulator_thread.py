"""The SMSC simulator on its own event loop in a thread: a carrier for tests that drive the
platform from synchronous code (HTTP clients, the CLI) and send it inbound messages."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from cloudsms.simulator.server import SmscSimulator


class ThreadedSimulator:
    """``with ThreadedSimulator() as smsc: smsc.sim.port; smsc.send_mo(source, dest, text)``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"},
                                 redeliver_after_s=0.2)  # fmt: skip
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> ThreadedSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send_mo(self, source: str, destination: str, text: str, **kw: Any) -> int:
        """Send once the platform's connector is bound (waits up to 15 s for it)."""

        async def send() -> int:
            return self.sim.send_mo(source, destination, text, **kw)

        deadline = time.monotonic() + 15
        while True:
            try:
                return asyncio.run_coroutine_threadsafe(send(), self.loop).result(5)
            except ValueError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
