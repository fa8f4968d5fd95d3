"""Mutual TLS against wrong, expired and unknown client certificates, old protocol versions and
garbage handshakes; refused handshakes are security events (cloudsms.api.tls_alerts)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
from platform_fixtures import RunningServer
from seed import Seeded, bump, seed_customer
from sqlalchemy import update

from cloudsms.api.guard import EVENTS
from cloudsms.config import Settings
from cloudsms.storage import tables
from cloudsms.storage.store import Store


def _packet(seeded: Seeded, serial: int = 1) -> bytes:
    return orjson.dumps(
        {
            "METHOD": "SMS_SEND_REQUEST",
            "TYPE": "REQUEST",
            "SERIAL": serial,
            "TIME": "now",
            "AUTH_KEY": seeded.auth_key,
            "ROUTE_ID": seeded.route,
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
            "SMS_CONTENT": "hello over mutual TLS",
            "VERSION": "2021-01-01",
        }
    )


class Pki:
    """A server certificate, a client CA with good / expired / not-yet-valid / second client
    certificates, and a rogue CA with a client certificate of the same name."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.server_ca = trustme.CA()
        client_ca = trustme.CA()
        self.server_ca.issue_cert(
            "127.0.0.1", "localhost"
        ).private_key_and_cert_chain_pem.write_to_path(str(directory / "server.pem"))
        client_ca.cert_pem.write_to_path(str(directory / "client-ca.pem"))
        now = dt.datetime.now(dt.UTC)
        certs = {
            "good": client_ca.issue_cert("customer@example.com"),
            "other": client_ca.issue_cert("someone-else@example.com"),
            "expired": client_ca.issue_cert(
                "customer@example.com",
                not_before=now - dt.timedelta(days=30),
                not_after=now - dt.timedelta(days=1),
            ),
            "future": client_ca.issue_cert(
                "customer@example.com",
                not_before=now + dt.timedelta(days=1),
                not_after=now + dt.timedelta(days=30),
            ),
            "rogue": trustme.CA().issue_cert("customer@example.com"),
        }
        for name, cert in certs.items():
            cert.private_key_and_cert_chain_pem.write_to_path(str(directory / f"{name}.pem"))
        self.good_sha256 = hashlib.sha256(
            ssl.PEM_cert_to_DER_cert(certs["good"].cert_chain_pems[0].bytes().decode())
        ).hexdigest()

    def context(self, cert: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        if cert:
            ctx.load_cert_chain(str(self.dir / f"{cert}.pem"))
        return ctx

    def settings(self, url: str, **overrides: Any) -> Settings:
        return Settings.load(
            environ={},
            database_url=url,
            role="api",
            config_poll_s=0.05,
            tls_cert=str(self.dir / "server.pem"),
            tls_key=str(self.dir / "server.pem"),
            tls_client_ca=str(self.dir / "client-ca.pem"),
            **overrides,
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Store, Seeded]]:
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    store = Store.open(url)
    seeded = seed_customer(store.engine)
    yield url, store, seeded
    store.close()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[RunningServer] = []

    def start(settings: Settings) -> RunningServer:
        server = RunningServer(settings).__enter__()
        started.append(server)
        return server

    EVENTS.reset()
    yield start
    for server in started:
        server.__exit__(None, None, None)


def tls_alerts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        str(getattr(r, "alert", ""))
        for r in caplog.records
        if getattr(r, "event", "") == "tls_handshake_refused"
    ]


def wait_for(predicate: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize(
    ("cert", "alert"),
    [
        ("rogue", "unknown_ca"),
        ("expired", "certificate_expired"),
        ("future", "bad_certificate"),
        (None, "certificate_required"),
    ],
)
def test_required_client_cert_refuses_bad_ones_and_logs_the_alert(
    pki: Pki,
    db: tuple[str, Store, Seeded],
    serve: Any,
    caplog: pytest.LogCaptureFixture,
    cert: str | None,
    alert: str,
) -> None:
    url, _, seeded = db
    server = serve(pki.settings(url, tls_client_required=True))
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with (
        httpx.Client(verify=pki.context(cert), timeout=5) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.post(server.url, content=_packet(seeded))
    assert wait_for(lambda: alert in tls_alerts(caplog)), tls_alerts(caplog)
    assert server.platform.store.count_messages(customer_id=seeded.customer_id) == 0
    # The good certificate still gets through on the same server.
    with httpx.Client(verify=pki.context("good"), timeout=5) as client:
        response = client.post(server.url, content=_packet(seeded, 2))
    assert orjson.loads(response.content)["RESULT_CODE"] == 1


def test_optional_client_cert_expired_is_refused_not_ignored(
    pki: Pki, db: tuple[str, Store, Seeded], serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With optional client certificates, a certificate that is presented must still verify."""
    url, _, seeded = db
    server = serve(pki.settings(url))
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with (
        httpx.Client(verify=pki.context("expired"), timeout=5) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.post(server.url, content=_packet(seeded))
    assert wait_for(lambda: "certificate_expired" in tls_alerts(caplog))
    with httpx.Client(verify=pki.context(), timeout=5) as client:  # no certificate: allowed
        assert (
            orjson.loads(client.post(server.url, content=_packet(seeded)).content)["RESULT_CODE"]
            == 1
        )


def test_valid_certificate_not_bound_to_the_key_is_403_and_an_event(
    pki: Pki, db: tuple[str, Store, Seeded], serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, store, seeded = db
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(client_cert_sha256=pki.good_sha256))
    bump(store.engine)
    server = serve(pki.settings(url, tls_client_required=True))
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    with httpx.Client(verify=pki.context("other"), timeout=5) as client:
        response = client.post(server.url, content=_packet(seeded))
    assert response.status_code == 403 and orjson.loads(response.content)["RESULT_CODE"] == 5
    [event] = [r for r in caplog.records if getattr(r, "event", "") == "client_cert_mismatch"]
    assert getattr(event, "client_ip", None) == "127.0.0.1"
    with httpx.Client(verify=pki.context("good"), timeout=5) as client:
        assert (
            orjson.loads(client.post(server.url, content=_packet(seeded, 2)).content)["RESULT_CODE"]
            == 1
        )


def test_tls_1_1_and_older_are_refused(
    pki: Pki, db: tuple[str, Store, Seeded], serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, _, _ = db
    server = serve(pki.settings(url))
    caplog.set_level(logging.WARNING, logger="cloudsms.security")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki.server_ca.configure_trust(ctx)
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client even offer TLS 1.1
    with (
        warnings.catch_warnings(),  # the client side of this test is deprecated, on purpose
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    assert wait_for(lambda: "protocol_version" in tls_alerts(caplog)), tls_alerts(caplog)


@pytest.mark.parametrize(
    "garbage",
    [
        b"POST /dave/io HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]",  # plain HTTP
        b"\x16\x03\x01\x00\x05hello",  # a TLS record header around nonsense
        bytes(range(256)) * 4,
        b"\x16\x03\x03\xff\xff" + b"A" * 1000,  # record length far past what is sent
    ],
)
def test_garbage_handshakes_are_closed_quickly(
    pki: Pki, db: tuple[str, Store, Seeded], serve: Any, garbage: bytes
) -> None:
    url, _, seeded = db
    server = serve(pki.settings(url))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(garbage)
        started = time.monotonic()
        raw.settimeout(5)
        try:
            while raw.recv(4096):  # maybe an alert, then EOF
                pass
        except (ConnectionResetError, TimeoutError):
            pass
        waited = time.monotonic() - started
    # The truncated record is the one case the server must wait for; everything else is
    # refused at once. Either way the server stays healthy for the next client.
    assert waited < (5.5 if garbage.startswith(b"\x16\x03\x03\xff\xff") else 1.0)
    with httpx.Client(verify=pki.context(), timeout=5) as client:
        assert (
            orjson.loads(client.post(server.url, content=_packet(seeded)).content)["RESULT_CODE"]
            == 1
        )
