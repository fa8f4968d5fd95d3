"""The start/stop protocol every part of a running platform follows, and the adapters to it.

A ``Platform`` keeps its components in one list, starts them in that order and stops the ones
it started in reverse, so whatever a component uses is started before it and stopped after it.
Most components (the configuration cache, the dispatcher, the report pusher…) already have
``async start()`` / ``async stop()``; the small classes below give the same two methods to what
does not: threads with a blocking close, the writer, the store, the UIP service's draining flag,
the PostgreSQL listener (made on the running loop) and the embedded SMSC simulator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from cloudsms.api.uip import UipService
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage.notify import DISPATCH, REPORTS, Listener
from cloudsms.storage.writer import GroupCommitWriter
from cloudsms.workers.dispatcher import Dispatcher
from cloudsms.workers.webhooks import ReportPusher

log = logging.getLogger("cloudsms.server")


class Component(Protocol):
    """A part of the platform that runs between ``start()`` and ``stop()`` (on the event loop)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class Background(Protocol):
    """A thread of its own: ``start()`` returns at once, ``close()`` blocks until it ended."""

    def start(self) -> None: ...
    def close(self) -> None: ...


class InThread:
    """A :class:`Background` as a component: its blocking close runs in a worker thread."""

    def __init__(self, background: Background) -> None:
        self.background = background

    async def start(self) -> None:
        self.background.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.background.close)


class Writing:
    """The group-commit writer: stopping it commits everything already queued."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer

    async def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.close()


class Closing:
    """Something opened before the platform starts (the store) and closed when it stops."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._close()


class Draining:
    """Stopped first: from then on the UIP endpoint answers Busy and ``/ready`` says no."""

    def __init__(self, service: UipService) -> None:
        self.service = service

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.service.draining = True


class Wakeups:
    """LISTEN (PostgreSQL) for work meant for this process's dispatcher and report pusher."""

    def __init__(
        self, url: str, dispatcher: Dispatcher | None, pusher: ReportPusher | None
    ) -> None:
        self.url = url
        self.dispatcher = dispatcher
        self.pusher = pusher
        self.listener: Listener | None = None

    async def start(self) -> None:
        self.listener = self._listen()
        self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await asyncio.to_thread(self.listener.close)

    def _listen(self) -> Listener:
        """The listener, waking our components on this (the running) loop."""
        loop = asyncio.get_running_loop()
        dispatcher, pusher = self.dispatcher, self.pusher
        callbacks: dict[str, Callable[[], None]] = {}
        if dispatcher is not None:

            def wake_dispatcher() -> None:
                loop.call_soon_threadsafe(dispatcher.wake)

            callbacks[DISPATCH] = wake_dispatcher
        if pusher is not None:
            callbacks[REPORTS] = pusher.wake
        return Listener(self.url, callbacks)


class EmbeddedSimulator:
    """The built-in SMSC simulator (sandbox carrier), when ``simulator_port`` is set."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.simulator: SmscSimulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.simulator = await start_simulator(self.settings)

    def send_mo(self, source: str, destination: str, text: str) -> int:
        """An inbound message from the simulator (the admin action ``simulator.mo``), from any
        thread; ConfigError when the simulator is off or the platform has not bound to it."""
        simulator, loop = self.simulator, self._loop
        if simulator is None or loop is None:
            raise ConfigError("the built-in SMSC simulator is off (set simulator_port)")

        async def send() -> int:
            return simulator.send_mo(source, destination, text)

        try:
            if _running_loop() is loop:
                return simulator.send_mo(source, destination, text)
            return asyncio.run_coroutine_threadsafe(send(), loop).result(10)
        except ValueError as exc:
            raise ConfigError(f"the simulator cannot send it: {exc}") from exc

    async def stop(self) -> None:
        if self.simulator is not None:
            await self.simulator.stop()


async def start_simulator(settings: Settings) -> SmscSimulator | None:
    """The embedded SMSC simulator (sandbox carrier), when ``simulator_port`` is set."""
    if not settings.simulator_port:
        return None
    system_id, _, password = settings.simulator_account.partition(":")
    simulator = SmscSimulator("127.0.0.1", settings.simulator_port, accounts={system_id: password})
    await simulator.start()
    log.info(
        "listening on smpp://%s:%d (built-in SMSC simulator, system_id %s)",
        simulator.host,
        simulator.port,
        system_id,
    )
    return simulator


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
