"""Load shedding, per-customer rate limits and the key-guessing throttle, through real HTTP.

Decisions under test (docs/security.md): over a customer's packets/s or messages/s the packet
gets Busy (0x03) and nothing is stored or charged; over ``max_inflight_packets`` a packet gets
Busy at once instead of queueing behind the store; a source that sent ``key_guess_limit``
unknown keys gets Channel_not_exist without a key lookup until its cool-down ends, logged once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from platform_fixtures import RunningServer
from seed import Seeded, seed_customer

from cloudsms.api.guard import EVENTS
from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.models import PacketOutcome, PacketWrite
from cloudsms.storage import tables
from cloudsms.storage.store import Store

BUSY = ResultCode.BUSY


def packet(seeded: Seeded, serial: int, recipients: int = 1, **fields: Any) -> bytes:
    body = {
        "METHOD": "SMS_SEND_REQUEST",
        "TYPE": "REQUEST",
        "SERIAL": serial,
        "TIME": f"t{serial}",
        "AUTH_KEY": seeded.auth_key,
        "ROUTE_ID": seeded.route,
        "MULTI_MSISDN_LIST": [
            {"DEST_MSISDN": f"6700{i:04d}", "COUNTRY_CODE": 852} for i in range(recipients)
        ],
        "SMS_CONTENT": "rate test",
        "VERSION": "2021-01-01",
        **fields,
    }
    return orjson.dumps(body)


class Platform:
    """A SQLite file with customers, and servers on it with chosen settings."""

    def __init__(self, directory: Path) -> None:
        self.url = f"sqlite:///{directory / 'cloudsms.db'}"
        self.store = Store.open(self.url)
        self.servers: list[RunningServer] = []

    def customer(self, name: str, *, networks: tuple[str, ...] = ()) -> Seeded:
        seeded = seed_customer(self.store.engine, name=name)
        with self.store.engine.begin() as conn:
            for cidr in networks:
                conn.execute(
                    tables.customer_networks.insert().values(
                        customer_id=seeded.customer_id, cidr=cidr
                    )
                )
        return seeded

    def serve(self, **overrides: Any) -> RunningServer:
        values = {"role": "api", "config_poll_s": 0.05, **overrides}
        server = RunningServer(Settings.load(environ={}, database_url=self.url, **values))
        self.servers.append(server.__enter__())
        return server

    def stored(self, uid: str) -> bool:
        return self.store.get_message(uid) is not None


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    EVENTS.reset()
    p = Platform(tmp_path)
    yield p
    for server in p.servers:
        server.__exit__(None, None, None)
    p.store.close()


def send(client: httpx.Client, server: RunningServer, body: bytes) -> dict[str, Any]:
    response = client.post(server.url, content=body)
    assert response.status_code == 200
    answer: dict[str, Any] = orjson.loads(response.content)
    return answer


# -- per-customer rate limits ---------------------------------------------------------------------


def test_packets_per_second_over_the_limit_get_busy_and_are_not_stored(
    platform: Platform,
) -> None:
    seeded = platform.customer("acme")
    server = platform.serve(customer_packets_per_s=5)
    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        answers = [send(client, server, packet(seeded, serial)) for serial in range(1, 21)]
        refilled = 5 * (time.monotonic() - started)  # tokens that came back meanwhile
        codes = [a["RESULT_CODE"] for a in answers]
        # A burst of one second's worth (5) passes, the rest of the burst is Busy.
        assert 5 <= codes.count(ResultCode.OK) <= 5 + refilled + 1, codes
        assert codes.count(BUSY) == 20 - codes.count(ResultCode.OK) >= 10
        for a in answers:
            if a["RESULT_CODE"] == BUSY:
                assert a["DETAIL_LIST"] == [] and a["SERIAL"] >= 1  # SERIAL echoed, nothing kept
            else:
                assert platform.stored(a["DETAIL_LIST"][0]["SMS_UID"])
        assert platform.store.count_messages(customer_id=seeded.customer_id) == codes.count(1)
        # The bucket refills at the rate: after 0.5 s about 2.5 more packets pass.
        time.sleep(0.5)
        started = time.monotonic()
        later = [send(client, server, packet(seeded, s))["RESULT_CODE"] for s in range(30, 36)]
        refilled = 5 * (time.monotonic() - started)
        assert 2 <= later.count(ResultCode.OK) <= 3 + refilled + 1, later


def test_messages_per_second_counts_recipients(platform: Platform) -> None:
    seeded = platform.customer("acme")
    server = platform.serve(customer_messages_per_s=10)
    with httpx.Client(timeout=10) as client:
        assert send(client, server, packet(seeded, 1, recipients=8))["RESULT_CODE"] == 1
        assert send(client, server, packet(seeded, 2, recipients=8))["RESULT_CODE"] == BUSY
        # What is left (about 2) still takes a 1-recipient packet.
        assert send(client, server, packet(seeded, 3, recipients=1))["RESULT_CODE"] == 1
        # A packet bigger than a second's worth passes once the bucket is full again.
        time.sleep(1.1)
        assert send(client, server, packet(seeded, 4, recipients=50))["RESULT_CODE"] == 1
        assert send(client, server, packet(seeded, 5, recipients=1))["RESULT_CODE"] == BUSY
    assert platform.store.count_messages(customer_id=seeded.customer_id) == 8 + 1 + 50


def test_limits_are_per_customer_and_overridable_by_name(platform: Platform) -> None:
    limited = platform.customer("limited")
    bulk = platform.customer("bulk")
    other = platform.customer("other")
    server = platform.serve(customer_packets_per_s=3, customer_rate_overrides="bulk=0/0")
    with httpx.Client(timeout=10) as client:
        for serial in range(1, 11):
            send(client, server, packet(limited, serial))
        # "limited" is exhausted; the others are not affected by it.
        assert send(client, server, packet(limited, 99))["RESULT_CODE"] == BUSY
        bulk_codes = [send(client, server, packet(bulk, s))["RESULT_CODE"] for s in range(1, 21)]
        assert bulk_codes == [1] * 20  # override: unlimited
        other_codes = [send(client, server, packet(other, s))["RESULT_CODE"] for s in range(1, 4)]
        assert other_codes == [1, 1, 1]  # default limit, own bucket


def test_a_busy_packet_can_be_retried_unchanged(platform: Platform) -> None:
    """Busy means retry later: the same bytes are accepted once the rate allows."""
    seeded = platform.customer("acme")
    server = platform.serve(customer_packets_per_s=1)
    with httpx.Client(timeout=10) as client:
        assert send(client, server, packet(seeded, 1))["RESULT_CODE"] == 1
        body = packet(seeded, 2)
        assert send(client, server, body)["RESULT_CODE"] == BUSY
        time.sleep(1.05)
        answer = send(client, server, body)
        assert answer["RESULT_CODE"] == 1 and platform.stored(answer["DETAIL_LIST"][0]["SMS_UID"])


# -- load shedding: the in-flight cap -------------------------------------------------------------


class SlowWriter:
    """Wraps the group-commit writer: every write waits ``delay`` first (a slow disk)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def write(self, packet: PacketWrite) -> PacketOutcome:
        await asyncio.sleep(self.delay)
        outcome: PacketOutcome = await self.inner.write(packet)
        return outcome

    def pending(self) -> int:
        pending: int = self.inner.pending()
        return pending


def test_overload_is_shed_fast_and_nothing_accepted_is_lost(platform: Platform) -> None:
    seeded = platform.customer("acme")
    server = platform.serve(max_inflight_packets=4)
    service = server.platform.service
    service.writer = SlowWriter(service.writer, delay=1.5)
    results: list[tuple[int, float, dict[str, Any]]] = []
    lock = threading.Lock()
    clients = [httpx.Client(timeout=10) for _ in range(40)]
    start = threading.Barrier(40)

    def one(serial: int, c: httpx.Client) -> None:
        start.wait()  # all 40 at once: an overload, not a queue of late arrivals
        started = time.monotonic()
        answer = send(c, server, packet(seeded, serial))
        with lock:
            results.append((serial, time.monotonic() - started, answer))

    threads = [threading.Thread(target=one, args=(s, c)) for s, c in enumerate(clients, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    for c in clients:
        c.close()
    assert len(results) == 40
    ok = [(lat, a) for _, lat, a in results if a["RESULT_CODE"] == ResultCode.OK]
    busy = [lat for _, lat, a in results if a["RESULT_CODE"] == BUSY]
    assert len(ok) + len(busy) == 40
    assert 1 <= len(ok) <= 4 < len(busy), (len(ok), len(busy))
    # Shed packets are answered without waiting for the slow store ...
    assert max(busy) < 1.0, sorted(busy)[-5:]
    # ... accepted ones waited for it and are stored: nothing acknowledged is lost.
    assert min(lat for lat, _ in ok) >= 1.5
    for _, a in ok:
        assert platform.stored(a["DETAIL_LIST"][0]["SMS_UID"])
    assert platform.store.count_messages(customer_id=seeded.customer_id) == len(ok)
    assert service.inflight == 0


# -- AUTH_KEY guessing ----------------------------------------------------------------------------


class CountingConfig:
    """A ConfigCache stand-in that counts key lookups (to show a blocked source gets none)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lookups = 0

    @property
    def current(self) -> Any:
        outer = self

        class View:
            def __getattr__(self, name: str) -> Any:
                return getattr(outer.inner.current, name)

            def customer_for_key(self, key: str) -> Any:
                outer.lookups += 1
                return outer.inner.current.customer_for_key(key)

        return View()


def from_address(address: str) -> httpx.Client:
    return httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address=address))


def test_key_guessing_is_throttled_per_source(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = platform.customer("acme")
    server = platform.serve(key_guess_limit=5, key_guess_window_s=60, key_guess_cooldown_s=3.0)
    counting = CountingConfig(server.platform.service.config)
    server.platform.service.config = counting
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    wrong = Seeded(seeded.customer_id, "x" * 128, seeded.route, seeded.price_list_id)
    with from_address("127.0.0.1") as attacker, from_address("127.0.0.2") as honest:
        for serial in range(1, 6):
            assert send(attacker, server, packet(wrong, serial))["RESULT_CODE"] == 5
        assert counting.lookups == 5
        # Blocked: even the right key gets Channel_not_exist from this source, with no lookup.
        for serial in range(6, 26):
            answer = send(attacker, server, packet(seeded, serial))
            assert answer["RESULT_CODE"] == 5 and answer["SERIAL"] == serial
        assert counting.lookups == 5
        # Another source with the right key is not affected.
        assert send(honest, server, packet(seeded, 100))["RESULT_CODE"] == ResultCode.OK
        # After the cool-down the source is served again.
        time.sleep(3.1)
        assert send(attacker, server, packet(seeded, 200))["RESULT_CODE"] == ResultCode.OK
    records = [r for r in caplog.records if r.name == "cloudsms.security"]
    throttled = [r for r in records if getattr(r, "event", "") == "key_guessing_throttled"]
    assert len(throttled) == 1  # once per window, not once per refused packet
    assert getattr(throttled[0], "client_ip", None) == "127.0.0.1"
    unknown = [r for r in records if getattr(r, "event", "") == "unknown_key"]
    assert len(unknown) == 4 and all(getattr(r, "client_ip", "") == "127.0.0.1" for r in unknown)


def test_refused_sources_are_security_events_with_structure(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = platform.customer("acme", networks=("10.0.0.0/8",))
    server = platform.serve()
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with httpx.Client(timeout=10) as client:
        response = client.post(server.url, content=packet(seeded, 1))
    assert response.status_code == 403 and orjson.loads(response.content)["RESULT_CODE"] == 5
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "source_ip_not_whitelisted"]
    assert getattr(record, "customer", None) == "acme"
    assert getattr(record, "client_ip", None) == "127.0.0.1"


def test_security_log_cannot_be_flooded(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    """200 unknown keys (throttle off): at most the event budget of the window is written."""
    seeded = platform.customer("acme")
    server = platform.serve(key_guess_limit=0)
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    wrong = Seeded(seeded.customer_id, "y" * 128, seeded.route, seeded.price_list_id)
    with httpx.Client(timeout=10) as client:
        for serial in range(1, 201):
            send(client, server, packet(wrong, serial % 65535 + 1))
    lines = [r for r in caplog.records if getattr(r, "event", "") == "unknown_key"]
    assert len(lines) == EVENTS.budget
