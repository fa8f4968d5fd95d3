"""HTTPS and mutual TLS on the UIP endpoint with real certificates made by trustme."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
from seed import bump, seed_customer
from sqlalchemy import update

from cloudsms.storage import tables
from cloudsms.storage.store import Store


def _packet(key: str, route: str, serial: int = 1) -> bytes:
    return orjson.dumps(
        {
            "METHOD": "SMS_SEND_REQUEST",
            "TYPE": "REQUEST",
            "SERIAL": serial,
            "TIME": "now",
            "AUTH_KEY": key,
            "ROUTE_ID": route,
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
            "SMS_CONTENT": "hello over TLS",
            "VERSION": "2021-01-01",
        }
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    server_ca = trustme.CA()
    client_ca = trustme.CA()
    server_cert = server_ca.issue_cert("127.0.0.1", "localhost")
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    good = client_ca.issue_cert("customer@example.com")
    rogue = trustme.CA().issue_cert("customer@example.com")  # unknown CA
    for name, cert in (("good", good), ("rogue", rogue)):
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / f"{name}.pem"))
    return {
        "dir": tmp_path,
        "server_ca": server_ca,
        "good_sha256": hashlib.sha256(
            ssl.PEM_cert_to_DER_cert(good.cert_chain_pems[0].bytes().decode())
        ).hexdigest(),
    }


def _client(pki: dict[str, Any], cert: str | None = None) -> httpx.Client:
    ctx = ssl.create_default_context()
    pki["server_ca"].configure_trust(ctx)
    if cert:
        ctx.load_cert_chain(str(pki["dir"] / f"{cert}.pem"))
    return httpx.Client(verify=ctx, timeout=10)


def test_https_and_optional_client_cert_binding(
    store: Store, make_server: Any, pki: dict[str, Any]
) -> None:
    seeded = seed_customer(store.engine)
    server = make_server(
        tls_cert=str(pki["dir"] / "server.pem"),
        tls_key=str(pki["dir"] / "server.pem"),
        tls_client_ca=str(pki["dir"] / "client-ca.pem"),
    )
    assert server.url.startswith("https://")
    # Optional client certificates: a plain HTTPS client works while the key is not bound.
    with _client(pki) as client:
        assert (
            orjson.loads(
                client.post(server.url, content=_packet(seeded.auth_key, seeded.route)).content
            )["RESULT_CODE"]
            == 1
        )
    # Bind the key to the good certificate: now only that certificate may use it.
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(client_cert_sha256=pki["good_sha256"]))
    bump(store.engine)
    server.wait_config(
        lambda: (
            server.platform.config.current.snapshot.customers_by_key[
                seeded.auth_key
            ].client_cert_sha256
            is not None
        )
    )
    with _client(pki) as client:
        response = client.post(server.url, content=_packet(seeded.auth_key, seeded.route, 2))
        assert response.status_code == 403 and orjson.loads(response.content)["RESULT_CODE"] == 5
    with _client(pki, "good") as client:
        response = client.post(server.url, content=_packet(seeded.auth_key, seeded.route, 3))
        assert orjson.loads(response.content)["RESULT_CODE"] == 1


def test_required_client_cert_refuses_unknown_ca(
    store: Store, make_server: Any, pki: dict[str, Any]
) -> None:
    seeded = seed_customer(store.engine)
    server = make_server(
        tls_cert=str(pki["dir"] / "server.pem"),
        tls_key=str(pki["dir"] / "server.pem"),
        tls_client_ca=str(pki["dir"] / "client-ca.pem"),
        tls_client_required=True,
    )
    for cert in (None, "rogue"):
        with _client(pki, cert) as client, pytest.raises(httpx.TransportError):
            client.post(server.url, content=_packet(seeded.auth_key, seeded.route))
    with _client(pki, "good") as client:
        response = client.post(server.url, content=_packet(seeded.auth_key, seeded.route))
        assert orjson.loads(response.content)["RESULT_CODE"] == 1


def test_tls_1_2_minimum(store: Store, make_server: Any, pki: dict[str, Any]) -> None:
    server = make_server(
        tls_cert=str(pki["dir"] / "server.pem"), tls_key=str(pki["dir"] / "server.pem")
    )
    # The server's own context refuses anything older than TLS 1.2 ...
    assert server.server.config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    # ... and a client limited to TLS 1.2 still gets through.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pki["server_ca"].configure_trust(ctx)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=ctx, timeout=5) as client:
        assert client.get(server.url.replace("/dave/io", "/health")).status_code == 200
