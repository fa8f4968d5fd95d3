"""Which client address the listeners believe (issue 12 item 1, docs/security.md §10).

By default the TCP peer is the client address: a client on 127.0.0.1 that writes
``X-Forwarded-For: 127.0.0.2`` must neither pass a whitelist of 127.0.0.2 nor escape the AUTH_KEY
guessing cool-down by changing the header, and the security log names the peer. With
``trusted_proxies`` set, the rightmost untrusted ``X-Forwarded-For`` entry is the client; what a
client writes to the left of it changes nothing. The same rule holds on the admin listener.

Every request goes over a real socket from a chosen loopback source address (127.0.0.0/8 is all
local on Linux), so these tests pin the behaviour whatever the HTTP ingress is built from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from platform_fixtures import RunningServer
from seed import Seeded, seed_customer

from cloudsms.api.guard import EVENTS
from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.exceptions import ConfigError
from cloudsms.runtime.serve import admin_uvicorn_config
from cloudsms.runtime.uip_server import listener_config
from cloudsms.storage import tables
from cloudsms.storage.store import Store

CHANNEL_NOT_EXIST = ResultCode.CHANNEL_NOT_EXIST
#: Headers a client might hope to be believed by.
FORGERIES = (
    {"X-Forwarded-For": "127.0.0.2"},
    {"X-Forwarded-For": "127.0.0.2", "X-Forwarded-Proto": "https"},
    {"X-Real-IP": "127.0.0.2"},
    {"Forwarded": "for=127.0.0.2"},
)


def packet(key: str, route: str, serial: int) -> bytes:
    return orjson.dumps(
        {
            "METHOD": "SMS_SEND_REQUEST",
            "TYPE": "REQUEST",
            "SERIAL": serial,
            "TIME": f"t{serial}",
            "AUTH_KEY": key,
            "ROUTE_ID": route,
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
            "SMS_CONTENT": "forwarded-for test",
            "VERSION": "2021-01-01",
        }
    )


def from_address(address: str) -> httpx.Client:
    return httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address=address))


class Platform:
    """A SQLite store with customer ``acme`` whitelisted to 127.0.0.2/32, and servers on it."""

    def __init__(self, directory: Path) -> None:
        self.url = f"sqlite:///{directory / 'cloudsms.db'}"
        self.store = Store.open(self.url)
        self.acme: Seeded = seed_customer(self.store.engine, name="acme")
        with self.store.engine.begin() as conn:
            conn.execute(
                tables.customer_networks.insert().values(
                    customer_id=self.acme.customer_id, cidr="127.0.0.2/32"
                )
            )
        self.servers: list[RunningServer] = []

    def serve(self, **overrides: Any) -> RunningServer:
        values = {"role": "api", "config_poll_s": 0.05, **overrides}
        server = RunningServer(Settings.load(environ={}, database_url=self.url, **values))
        self.servers.append(server.__enter__())
        return server

    def send(
        self, client: httpx.Client, server: RunningServer, serial: int, key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, int]:  # fmt: skip
        """(HTTP status, RESULT_CODE) of one packet from acme (or with another key)."""
        body = packet(key or self.acme.auth_key, self.acme.route, serial)
        response = client.post(server.url, content=body, headers=headers or {})
        return response.status_code, orjson.loads(response.content)["RESULT_CODE"]

    def balance(self) -> int:
        return self.store.customer_balance(self.acme.customer_id)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    EVENTS.reset()
    p = Platform(tmp_path)
    yield p
    for server in p.servers:
        server.__exit__(None, None, None)
    p.store.close()


def security_records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "cloudsms.security" and getattr(r, "event", "") == event
    ]


# -- UIP listener, no trusted proxy (the default) ----------------------------------------------


def test_forwarding_headers_do_not_pass_a_whitelist(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    server = platform.serve()
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    before = platform.balance()
    with from_address("127.0.0.1") as outsider:
        for serial, headers in enumerate(FORGERIES, start=1):
            assert platform.send(outsider, server, serial, headers=headers) == (
                403,
                CHANNEL_NOT_EXIST,
            ), headers
    assert platform.balance() == before  # nothing charged
    refused = security_records(caplog, "source_ip_not_whitelisted")
    assert [getattr(r, "client_ip", None) for r in refused] == ["127.0.0.1"] * len(FORGERIES)
    with from_address("127.0.0.2") as insider:  # the whitelisted address itself is served
        assert platform.send(insider, server, 99) == (200, ResultCode.OK)


def test_changing_the_header_does_not_escape_the_guessing_cool_down(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    server = platform.serve(key_guess_limit=5, key_guess_window_s=60, key_guess_cooldown_s=60)
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with from_address("127.0.0.1") as guesser:
        for serial in range(1, 31):  # 30 wrong keys, each "from" another address
            headers = {"X-Forwarded-For": f"10.0.{serial}.1"}
            status, code = platform.send(guesser, server, serial, "x" * 128, headers)
            assert (status, code) == (200, CHANNEL_NOT_EXIST)
        # In its cool-down: a valid key gets 0x05 at once, without a lookup (outside it, this
        # key from a non-whitelisted address would be a 403).
        headers = {"X-Forwarded-For": "10.9.9.9"}
        assert platform.send(guesser, server, 100, headers=headers) == (200, CHANNEL_NOT_EXIST)
    [throttled] = security_records(caplog, "key_guessing_throttled")
    assert getattr(throttled, "client_ip", None) == "127.0.0.1"
    unknown = security_records(caplog, "unknown_key")
    assert unknown and {getattr(r, "client_ip", None) for r in unknown} == {"127.0.0.1"}


# -- UIP listener behind trusted proxies ---------------------------------------------------------


def test_trusted_proxy_rightmost_untrusted_entry_is_the_client(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxies are 127.0.0.1 and 127.0.0.10; acme sits at 127.0.0.2 behind them."""
    server = platform.serve(trusted_proxies="127.0.0.1, 127.0.0.10/32")
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with from_address("127.0.0.1") as proxy:
        # The proxy appended acme's address; whatever acme wrote before it does not matter.
        for serial, chain in enumerate(
            ("127.0.0.2", "8.8.8.8, 127.0.0.2", "127.0.0.2, 127.0.0.10", "[::1], 127.0.0.2:5555"),
            start=1,
        ):
            headers = {"X-Forwarded-For": chain}
            assert platform.send(proxy, server, serial, headers=headers) == (200, 1), chain
        # Two header lines are one list, in order.
        two_lines = [("X-Forwarded-For", "127.0.0.9"), ("X-Forwarded-For", "127.0.0.2")]
        body = packet(platform.acme.auth_key, platform.acme.route, 50)
        response = proxy.post(server.url, content=body, headers=two_lines)
        assert (response.status_code, response.json()["RESULT_CODE"]) == (200, 1)
        # A client elsewhere writing acme's address on the left: the proxy appended the truth.
        forged = {"X-Forwarded-For": "127.0.0.2, 127.0.0.5"}
        assert platform.send(proxy, server, 10, headers=forged) == (403, CHANNEL_NOT_EXIST)
        # Garbage where the client's address should be: the proxy itself is the client.
        garbage = {"X-Forwarded-For": "127.0.0.2, not-an-address"}
        assert platform.send(proxy, server, 11, headers=garbage) == (403, CHANNEL_NOT_EXIST)
    with from_address("127.0.0.3") as not_a_proxy:  # an untrusted peer's header is ignored
        headers = {"X-Forwarded-For": "127.0.0.2"}
        assert platform.send(not_a_proxy, server, 12, headers=headers) == (403, CHANNEL_NOT_EXIST)
    refused = security_records(caplog, "source_ip_not_whitelisted")
    ips = [getattr(r, "client_ip", None) for r in refused]
    assert ips == ["127.0.0.5", "127.0.0.1", "127.0.0.3"]


def test_trusted_proxy_guessing_is_counted_per_forwarded_client(platform: Platform) -> None:
    server = platform.serve(
        trusted_proxies="127.0.0.1", key_guess_limit=5, key_guess_window_s=60,
        key_guess_cooldown_s=60,
    )  # fmt: skip
    with from_address("127.0.0.1") as proxy:
        for serial in range(1, 11):  # the guesser rotates what it writes; the proxy appends .66
            headers = {"X-Forwarded-For": f"10.0.{serial}.1, 127.0.0.66"}
            assert platform.send(proxy, server, serial, "x" * 128, headers) == (200, 5)
        blocked = {"X-Forwarded-For": "127.0.0.2, 127.0.0.66"}
        assert platform.send(proxy, server, 20, headers=blocked) == (200, CHANNEL_NOT_EXIST)
        # acme, behind the same proxy, is not caught in the guesser's cool-down.
        assert platform.send(proxy, server, 21, headers={"X-Forwarded-For": "127.0.0.2"}) == (
            200,
            ResultCode.OK,
        )


def test_bad_trusted_proxies_setting_is_a_readable_error() -> None:
    settings = Settings.load(environ={}, trusted_proxies="127.0.0.1, proxy.example")
    message = "trusted_proxies: 'proxy.example' is not an IP address or network"
    with pytest.raises(ConfigError, match=message):
        listener_config(settings)
    with pytest.raises(ConfigError, match=message):
        admin_uvicorn_config(echo_client, host="127.0.0.1", port=0, trusted_proxies="proxy.example")


# -- admin listener: the same rule ----------------------------------------------------------------


async def echo_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers the client address and scheme the listener hands to its app."""
    client = scope.get("client")
    body = orjson.dumps({"client": client[0] if client else None, "scheme": scope["scheme"]})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


class Listener:
    """An admin listener (``admin_uvicorn_config``) serving ``echo_client`` on 127.0.0.1."""

    def __init__(self, trusted_proxies: str) -> None:
        config = admin_uvicorn_config(
            echo_client, host="127.0.0.1", port=0, log_level="warning",
            trusted_proxies=trusted_proxies,
        )  # fmt: skip
        config.log_config = None
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def test_admin_listener_believes_only_the_peer_by_default() -> None:
    headers = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    with Listener("") as url, from_address("127.0.0.1") as client:
        seen = client.get(url, headers=headers).json()
    assert seen == {"client": "127.0.0.1", "scheme": "http"}


def test_admin_listener_behind_a_trusted_proxy() -> None:
    headers = {"X-Forwarded-For": "10.9.9.9, 10.1.2.3", "X-Forwarded-Proto": "https"}
    with Listener("127.0.0.1") as url:
        with from_address("127.0.0.1") as proxy:
            seen = proxy.get(url, headers=headers).json()
            assert seen == {"client": "10.1.2.3", "scheme": "http"}
        with from_address("127.0.0.4") as other:
            seen = other.get(url, headers=headers).json()
            assert seen == {"client": "127.0.0.4", "scheme": "http"}
