"""Fixtures that run the real platform: its UIP listener on 127.0.0.1 (see tests/conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cloudsms.config import Settings
from cloudsms.runtime.uip_server import UipServer


class RunningServer:
    """The UIP listener serving the platform in a background thread, on an ephemeral port."""

    def __init__(self, settings: Settings) -> None:
        self.server = UipServer(settings, port=0)
        self.platform = self.server.platform
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.scheme = "https" if settings.tls_cert else "http"
        self.settings = settings

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{self.settings.path}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def wait_config(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until the running server's configuration satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("configuration change not picked up in time")
            time.sleep(0.02)


@pytest.fixture
def make_server(database_url: str) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def make(**settings_overrides: Any) -> RunningServer:
        overrides = {"config_poll_s": 0.05, "role": "api", **settings_overrides}
        settings = Settings.load(environ={}, database_url=database_url, **overrides)
        server = RunningServer(settings).__enter__()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
