"""The admin listener's uvicorn server, saying what it listens on and when and why it stops.

An operator starting ``cloudsms serve`` needs one line per listener with the URL to use
(``listening on http://127.0.0.1:1815/dave/io (UIP endpoint)``), and a line when a signal
stops the process, so that a log shows why it ended. uvicorn's own lines ("Uvicorn running on
…", "Shutting down") do not say which of the process's listeners they are about; they are
shown at debug level only (``cloudsms.logging.configure``). The UIP listener
(``cloudsms.runtime.uip_server``) logs the same lines without uvicorn.
"""

from __future__ import annotations

import logging
import signal
import socket
from types import FrameType

import uvicorn

log = logging.getLogger("cloudsms.server")

#: Set once a stop signal has been logged: the process's listeners all receive it.
_stop_logged: list[int] = []


def log_stop_signal(sig: int) -> None:
    """Log the signal that stops the process, once for all its listeners."""
    if not _stop_logged:
        _stop_logged.append(sig)
        log.info("%s received: stopping", signal.Signals(sig).name)


def stop_signal_received() -> bool:
    """True once this process got a stop signal (SIGTERM, SIGINT)."""
    return bool(_stop_logged)


class NamedServer(uvicorn.Server):
    """A uvicorn server for one listener (``what``), logging its URL, its stop and its end."""

    def __init__(self, config: uvicorn.Config, what: str, path: str = "/") -> None:
        super().__init__(config)
        self.what = what
        self.path = path
        self._url = ""

    def url(self) -> str:
        """The URL clients use: the address actually bound (a port setting of 0 included)."""
        config = self.config
        host, port = config.host, config.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets or []:
                host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"{'https' if config.is_ssl else 'http'}://{shown}:{port}{self.path}"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._url = self.url()
            log.info("listening on %s (%s)", self._url, self.what)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        log_stop_signal(sig)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        log.info("stopped: %s (%s)", self._url, self.what)
