"""Fixtures for the admin listener: the admin app served by uvicorn beside the platform.

``admin_server`` starts the platform (``make_server``, role "api": the UIP endpoint and the
configuration cache, no carrier links) and the admin app over the platform's own store, each on
an ephemeral 127.0.0.1 port — the same two listeners ``cloudsms.runtime.serve`` runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from cloudsms.admin import auth
from cloudsms.admin.app import create_admin_app
from cloudsms.runtime.serve import admin_uvicorn_config
from cloudsms.storage.store import Store


class AdminThread:
    def __init__(self, store: Store, **options: Any) -> None:
        self.app = create_admin_app(store, **options)
        self.server = uvicorn.Server(
            admin_uvicorn_config(self.app, host="127.0.0.1", port=0, log_level="warning")
        )
        self.server.config.log_config = None
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AdminThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("admin server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@dataclass
class Admin:
    """A running platform + admin listener, with an admin and a read-only token."""

    url: str
    uip_url: str
    store: Store
    admin_token: str
    readonly_token: str
    platform: Any

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    @property
    def api(self) -> httpx.Client:
        return self.client(self.admin_token)

    @property
    def ro(self) -> httpx.Client:
        return self.client(self.readonly_token)


def make_token(store: Store, name: str, role: str) -> str:
    token = auth.new_token()
    store.create_admin_token(name, auth.digest(token), role)  # type: ignore[arg-type]
    return token


@pytest.fixture
def admin_server(make_server: Callable[..., Any]) -> Iterator[Callable[..., Admin]]:
    started: list[AdminThread] = []

    def make(**platform_settings: Any) -> Admin:
        platform = make_server(**platform_settings)
        store = platform.platform.store
        thread = AdminThread(platform.platform.store).__enter__()
        started.append(thread)
        return Admin(
            url=thread.url,
            uip_url=platform.url,
            store=store,
            admin_token=make_token(store, "alice", "admin"),
            readonly_token=make_token(store, "rita", "readonly"),
            platform=platform,
        )

    yield make
    for thread in reversed(started):
        thread.__exit__(None, None, None)


@pytest.fixture
def admin(admin_server: Callable[..., Admin]) -> Admin:
    return admin_server()


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The ``data`` of a successful answer (asserting the status and the envelope)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is True, body
    return body["data"]


def send_sms(
    client: httpx.Client, url: str, key: str, route: str, serial: int, numbers: list[str],
    text: str, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """One SMS_SEND_REQUEST through the real UIP endpoint; numbers as "852-67000011"."""
    body = {
        "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial, "TIME": f"t{serial}",
        "AUTH_KEY": key, "ROUTE_ID": route, "VERSION": "2021-01-01", "SMS_CONTENT": text,
        "MULTI_MSISDN_LIST": [
            {"COUNTRY_CODE": int(n.split("-")[0]), "DEST_MSISDN": n.split("-")[1]} for n in numbers
        ],
        **extra,
    }  # fmt: skip
    answer: dict[str, Any] = client.post(url, json=body).json()
    return answer
