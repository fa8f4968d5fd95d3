"""The UIP listener: ``loop.create_server`` with the platform's own HTTP protocol, no framework.

``UipServer`` owns the platform's life on this listener: ``startup`` starts the platform, then
listens (so the first request finds the store and the configuration ready); ``shutdown`` stops
accepting, closes idle connections, lets answers under way finish (``graceful_s``; the packets
behind them may be committing), then stops the platform. It logs one line when it listens, with
the URL clients use, and one when it has stopped; the signal that stops a process is logged
once for all its listeners (``cloudsms.runtime.listening``).

It mirrors the part of ``uvicorn.Server`` that ``cloudsms.runtime.serve`` drives (``serve()``,
``started``, ``should_exit``), so the admin listener (still uvicorn) runs beside it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from cloudsms.api.forwarded import TrustedProxies
from cloudsms.api.http_limits import HttpLimits
from cloudsms.api.http_protocol import LINGER_S, HttpListener
from cloudsms.api.routes import UipRoutes
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError
from cloudsms.runtime.listening import log_stop_signal
from cloudsms.runtime.platform import Platform, build_platform
from cloudsms.runtime.tls import ssl_context

log = logging.getLogger("cloudsms.server")

#: What the UIP listener serves, as its "listening on" line says.
UIP_WHAT = "UIP endpoint"
#: What a process without the API (a worker) serves on the same listener.
HEALTH_WHAT = "health checks only"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """Where and how the UIP listener listens, checked before anything starts."""

    host: str
    port: int
    ssl: ssl.SSLContext | None
    limits: HttpLimits
    proxies: TrustedProxies
    path: str


def listener_config(settings: Settings, *, port: int | None = None) -> ListenerConfig:
    """The UIP listener's configuration; a ConfigError names a wrong setting or file."""
    return ListenerConfig(
        host=settings.host,
        port=settings.port if port is None else port,
        ssl=ssl_context(settings),
        limits=HttpLimits.from_settings(settings),
        proxies=TrustedProxies.parse(settings.trusted_proxies),
        path=settings.path,
    )


class UipServer:
    """The UIP listener serving ``platform`` (built from ``settings`` if not given).

    ``fd``: a listening socket bound already (``cloudsms serve --reuse-port``); ``port``
    overrides the setting (0: an ephemeral port, as tests use).
    """

    def __init__(
        self,
        settings: Settings,
        platform: Platform | None = None,
        *,
        fd: int | None = None,
        port: int | None = None,
        graceful_s: float = 10.0,
    ) -> None:
        self.config = listener_config(settings, port=port)
        self.platform = platform or build_platform(settings)
        routes = UipRoutes(
            self.platform.service if self.platform.serves_api else None,
            path=settings.path,
            ready=self.platform.ready,
        )
        self.listener = HttpListener(routes, self.config.limits, self.config.proxies)
        self.fd = fd
        self.graceful_s = graceful_s
        self.servers: list[asyncio.Server] = []
        self.started = False
        self._what = UIP_WHAT if self.platform.serves_api else HEALTH_WHAT
        self.should_exit = False
        self._url = ""
        self._signals: list[int] = []

    def url(self) -> str:
        """The URL clients use: the address actually bound (a port setting of 0 included)."""
        host, port = self.config.host, self.config.port
        for server in self.servers:
            for sock in server.sockets or []:
                host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        scheme = "https" if self.config.ssl is not None else "http"
        return f"{scheme}://{shown}:{port}{self.config.path}"

    @property
    def port(self) -> int:
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port

    def run(self) -> None:
        """Serve in the foreground on a uvloop event loop until a signal stops it."""
        try:
            import uvloop

            uvloop.run(self.serve())
        except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
            asyncio.run(self.serve())

    async def serve(self) -> None:
        """Start, serve until ``should_exit``, then shut down gracefully."""
        with self._capture_signals():
            await self.startup()
            try:
                # A flag, polled: signal handlers and other threads (tests) set it.
                while not self.should_exit:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            finally:
                await self.shutdown()

    async def startup(self) -> None:
        """Start the platform, then listen; if listening fails, stop the platform again."""
        await self.platform.start()
        try:
            self.servers = [await self._listen()]
        except BaseException:
            await self.platform.stop()
            raise
        self.started = True
        self._url = self.url()
        log.info("listening on %s (%s)", self._url, self._what)

    async def _listen(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        config = self.config
        options: dict[str, Any] = {"ssl": config.ssl, "backlog": 2048}
        if config.ssl is not None and config.limits.header_timeout_s > 0:
            # A handshake is part of getting the request's headers in: the same deadline
            # (asyncio's default would let a silent client hold a socket for 60 s).
            options["ssl_handshake_timeout"] = config.limits.header_timeout_s
        if self.fd is not None:
            sock = socket.socket(fileno=os.dup(self.fd))
            return await loop.create_server(self.listener, sock=sock, **options)
        try:
            return await loop.create_server(self.listener, config.host, config.port, **options)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {config.host}:{config.port} for the {UIP_WHAT}:"
                f" {exc.strerror or exc}"
            ) from exc

    async def shutdown(self) -> None:
        """Stop accepting, finish the answers under way, close the rest, stop the platform."""
        for server in self.servers:
            server.close()
        self.listener.shutdown()
        tasks = self.listener.tasks
        deadline = time.monotonic() + self.graceful_s
        while tasks and time.monotonic() < deadline:
            await asyncio.wait(set(tasks), timeout=deadline - time.monotonic())
        if tasks:
            log.error("%d answers under way after %ss: cancelled", len(tasks), self.graceful_s)
            for task in list(tasks):
                task.cancel()
        # Connections that just sent their last answer linger until the client has read it.
        linger_until = min(deadline, time.monotonic() + LINGER_S)
        while self.listener.connections and time.monotonic() < linger_until:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.listener.close_all()
        for server in self.servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        if self.started:
            await self.platform.stop()
            log.info("stopped: %s (%s)", self._url, self._what)
        self.started = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        log_stop_signal(sig)
        self._signals.append(sig)
        self.should_exit = True

    @contextlib.contextmanager
    def _capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the server; once stopped, they are raised again (as uvicorn
        does), so the process ends as the signal's default says."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        for captured in reversed(self._signals):
            signal.raise_signal(captured)
