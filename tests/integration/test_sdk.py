"""The customer SDK against the real platform over real HTTP(S) on 127.0.0.1, and the DR receiver
served by uvicorn receiving the platform's own SMS_PUSH_REPORT bytes.

The SDK does not depend on the storage engine, so these tests run on SQLite only.
"""

from __future__ import annotations

import asyncio
import decimal
import hashlib
import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
import uvicorn
from seed import bump, seed_customer
from sqlalchemy import func, select, update

from cloudsms.client import (
    AsyncClient,
    Client,
    CloudSMSClientError,
    InboundMessage,
    Recipient,
    Report,
    ReportReceiver,
    ResultCode,
    SmsState,
)
from cloudsms.domain.inbound import DueMo, build_mo_push
from cloudsms.domain.reports import ReportContent, build_report, read_answer
from cloudsms.storage import tables
from cloudsms.storage.store import Store

UID_RE = re.compile(r"^[0-9A-Z]{1,32}$")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def numbers(count: int) -> list[str]:
    return [f"852-6{n:07d}" for n in range(count)]


def stored_count(store: Store, customer_id: int) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(tables.messages)
                .where(tables.messages.c.customer_id == customer_id)
            ).scalar_one()
        )


class LoseFirstAnswer(httpx.BaseTransport):
    """Delivers the first request to the server, then drops its answer as a read timeout."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        response = self.inner.handle_request(request)
        if len(self.bodies) == 1:
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncLoseFirstAnswer(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        response = await self.inner.handle_async_request(request)
        if len(self.bodies) == 1:
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- sending --------------------------------------------------------------------------------


def test_send_single_recipient(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    with Client(server.url, seeded.auth_key, route_id=seeded.route, timeout=10) as client:
        [result] = client.send(
            "Your code is 123345.",
            ["852-67000011"],
            priority=1,
            customer_body={"order": "A-1"},
            signature="CloudSMS",
            signature_type=3,
        )
    assert result.ok and result.code is ResultCode.OK and result.desc == "OK"
    assert result.serial == 1 and result.attempts == 1
    [recipient] = result.recipients
    assert (recipient.country_code, recipient.msisdn) == (852, "67000011")
    assert recipient.code is ResultCode.OK and UID_RE.match(recipient.sms_uid)
    message = store.get_message(recipient.sms_uid)
    assert message is not None
    assert message.priority == 1 and orjson.loads(message.customer_body or "") == {"order": "A-1"}


def test_send_450_recipients_in_three_packets(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    seen: list[int] = []
    with Client(server.url, seeded.auth_key, route_id=seeded.route, timeout=30) as client:
        results = client.send("hello", numbers(450), on_packet=lambda r: seen.append(r.serial))
    assert [len(r.recipients) for r in results] == [200, 200, 50]
    assert [r.serial for r in results] == seen == [1, 2, 3]
    assert all(r.ok for r in results)
    uids = [d.sms_uid for r in results for d in r.recipients]
    assert len(set(uids)) == 450 and all(UID_RE.match(u) for u in uids)
    assert [f"{d.country_code}-{d.msisdn}" for r in results for d in r.recipients] == numbers(450)
    assert stored_count(store, seeded.customer_id) == 450


def test_per_recipient_codes(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    with Client(server.url, seeded.auth_key, route_id=seeded.route, timeout=10) as client:
        [result] = client.send(
            "hello",
            ["852-67000011", ("852", "67ab"), (86, "1380013"), Recipient(44, "7700900123")],
        )
    assert result.code is ResultCode.OK  # at least one accepted
    codes = [r.code for r in result.recipients]
    assert codes == [
        ResultCode.OK,
        ResultCode.INVALID_PARAMETER,  # not digits
        ResultCode.INVALID_PARAMETER,  # China, not 11 digits
        ResultCode.UNPRICED_AREA,  # no price for 44
    ]
    assert [bool(r.sms_uid) for r in result.recipients] == [True, False, False, False]
    assert len(result.accepted) == 1 and len(result.refused) == 3


def test_refused_packet_gives_every_recipient_its_code(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    with Client(server.url, "x" * 128, route_id=seeded.route, timeout=10) as client:
        [result] = client.send("hello", ["852-67000011", "852-67000012"])
    assert result.code is ResultCode.CHANNEL_NOT_EXIST and result.attempts == 1
    assert [(r.code, r.sms_uid) for r in result.recipients] == [
        (ResultCode.CHANNEL_NOT_EXIST, ""),
        (ResultCode.CHANNEL_NOT_EXIST, ""),
    ]


def test_busy_is_retried_with_backoff_then_returned(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server(pending_writes_limit=-1)  # every packet is answered Busy
    client = Client(server.url, seeded.auth_key, route_id=seeded.route, retries=3, backoff=0.01)
    delays: list[float] = []
    client.sleep = delays.append
    with client:
        [result] = client.send("hello", ["852-67000011"])
    assert result.code is ResultCode.BUSY and result.attempts == 4
    assert delays == [0.01, 0.02, 0.04]
    assert result.recipients[0].code is ResultCode.BUSY
    assert stored_count(store, seeded.customer_id) == 0


def test_retry_after_lost_answer_returns_the_same_uids(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    transport = LoseFirstAnswer()
    client = Client(server.url, seeded.auth_key, route_id=seeded.route, transport=transport)
    client.sleep = lambda _: None
    with client:
        [result] = client.send("hello", numbers(3))
    assert result.ok and result.attempts == 2
    assert transport.bodies[0] == transport.bodies[1]  # the same SERIAL, TIME and bytes
    assert stored_count(store, seeded.customer_id) == 3  # stored once
    for r in result.recipients:
        message = store.get_message(r.sms_uid)
        assert message is not None and message.dest_msisdn == r.msisdn
    assert store.customer_balance(seeded.customer_id) == 1_000_000_000 - 3 * 50_000


def test_no_server_raises_after_retries() -> None:
    client = Client("http://127.0.0.1:9/dave/io", "k" * 128, route_id="R", retries=2)
    delays: list[float] = []
    client.sleep = delays.append
    with client, pytest.raises(CloudSMSClientError, match="after 3 attempts"):
        client.send("hello", ["852-67000011"])
    assert len(delays) == 2


def test_arguments_are_checked_before_sending() -> None:
    with Client("http://127.0.0.1:9/dave/io", "k" * 128) as client:
        with pytest.raises(ValueError, match="route_id"):
            client.send("hello", ["852-67000011"])
        with pytest.raises(ValueError, match="COUNTRYCODE-NUMBER"):
            client.send("hello", ["67000011"], route_id="R")
    with pytest.raises(ValueError, match="http"):
        Client("ftp://example.com", "k")


async def test_async_client_send_busy_and_replay(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    async with AsyncClient(server.url, seeded.auth_key, route_id=seeded.route) as client:
        results = await client.send("hello", numbers(450))
    assert [len(r.recipients) for r in results] == [200, 200, 50]
    assert [r.serial for r in results] == [1, 2, 3]
    assert len({d.sms_uid for r in results for d in r.recipients}) == 450

    transport = AsyncLoseFirstAnswer()
    client = AsyncClient(server.url, seeded.auth_key, route_id=seeded.route, transport=transport)
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    client.sleep = sleep
    async with client:
        [replayed] = await client.send("again", ["852-69999999"])
    assert replayed.ok and replayed.attempts == 2 and slept == [0.5]
    assert transport.bodies[0] == transport.bodies[1]
    assert stored_count(store, seeded.customer_id) == 451

    busy_server = make_server(pending_writes_limit=-1)
    busy = AsyncClient(busy_server.url, seeded.auth_key, route_id=seeded.route, retries=2)
    busy.sleep = sleep
    slept.clear()
    async with busy:
        [result] = await busy.send("hello", ["852-67000011"])
    assert result.code is ResultCode.BUSY and result.attempts == 3 and slept == [0.5, 1.0]


# -- DR_QUERY -------------------------------------------------------------------------------


def test_query_own_and_foreign_uids(store: Store, make_server: Any) -> None:
    mine = seed_customer(store.engine, name="mine")
    other = seed_customer(store.engine, name="other")
    server = make_server()
    with Client(server.url, other.auth_key, route_id=other.route) as client:
        [foreign] = client.send("theirs", ["852-67000099"])
    foreign_uid = foreign.recipients[0].sms_uid
    with Client(server.url, mine.auth_key, route_id=mine.route) as client:
        [sent] = client.send("mine", ["852-67000011", "852-67000012"])
        own = [r.sms_uid for r in sent.recipients]
        states = client.query([*own, foreign_uid, "NOSUCHUID"])
    assert [s.sms_uid for s in states] == [*own, foreign_uid, "NOSUCHUID"]
    for state, msisdn in zip(states[:2], ("67000011", "67000012"), strict=True):
        assert state.ok and state.sms_state is SmsState.IDLE  # no dispatcher: waiting
        assert (state.country_code, state.msisdn) == (852, msisdn)
        assert state.sms_count == 1 and state.fee == decimal.Decimal("0.05")
        assert state.currency == "HKD" and state.submit_time and state.report_time == ""
    assert [s.code for s in states[2:]] == [ResultCode.DB_NOT_FIND, ResultCode.DB_NOT_FIND]
    assert states[2].sms_state is None and states[2].country_code is None


async def test_async_query_in_chunks_of_200(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    server = make_server()
    asked = [f"UNKNOWN{n}" for n in range(201)]
    async with AsyncClient(server.url, seeded.auth_key, route_id=seeded.route) as client:
        states = await client.query(asked)
    assert [s.sms_uid for s in states] == asked
    assert {s.code for s in states} == {ResultCode.DB_NOT_FIND}


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    server_ca.cert_pem.write_to_path(str(tmp_path / "server-ca.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    client = client_ca.issue_cert("customer@example.com")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.crt"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    der = ssl.PEM_cert_to_DER_cert(client.cert_chain_pems[0].bytes().decode())
    return {"dir": tmp_path, "client_sha256": hashlib.sha256(der).hexdigest()}


def test_tls_with_client_certificate(store: Store, make_server: Any, pki: dict[str, Any]) -> None:
    d = pki["dir"]
    seeded = seed_customer(store.engine)
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(client_cert_sha256=pki["client_sha256"]))
    bump(store.engine)
    server = make_server(
        tls_cert=str(d / "server.pem"),
        tls_key=str(d / "server.pem"),
        tls_client_ca=str(d / "client-ca.pem"),
    )
    assert server.url.startswith("https://")
    cert = (str(d / "client.crt"), str(d / "client.key"))
    ca = str(d / "server-ca.pem")
    with Client(server.url, seeded.auth_key, route_id=seeded.route, verify=ca, cert=cert) as c:
        [result] = c.send("over mutual TLS", ["852-67000011"])
    assert result.ok
    # Without the certificate the key is refused (bound to the certificate): 403 + code 5.
    with Client(server.url, seeded.auth_key, route_id=seeded.route, verify=ca) as c:
        [refused] = c.send("no certificate", ["852-67000011"])
    assert refused.code is ResultCode.CHANNEL_NOT_EXIST
    # An untrusted server certificate never gets an answer.
    untrusting = Client(server.url, seeded.auth_key, route_id=seeded.route, retries=0)
    with untrusting as c, pytest.raises(CloudSMSClientError, match="after 1 attempt:"):
        c.send("wrong CA", ["852-67000011"])


# -- the DR receiver ------------------------------------------------------------------------


class ReceiverServer:
    def __init__(self, receiver: ReportReceiver) -> None:
        config = uvicorn.Config(receiver, host="127.0.0.1", port=0, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/dr"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


KEY = "K" * 128


def push(
    key: str = KEY, *, state: int = 2, body: str | None = '{"order": "A-1", "n": 2.50}'
) -> bytes:
    """The platform's own SMS_PUSH_REPORT bytes (cloudsms.domain.reports.build_report)."""
    content = ReportContent(
        auth_key=key,
        serial=42,
        sms_uid="0MWWBXC46SZZVVU4600000",
        sender="CloudSMS",
        country_code=852,
        dest_msisdn="67000011",
        sms_state=state,
        result_desc=SmsState(state).name if 1 <= state <= 9 else "?",
        report_ms=1_764_000_003_000,
        customer_body=body,
        segments=2,
        fee_micros=105_000,
        currency="HKD",
    )
    return build_report(content, push_ms=1_764_000_005_000)


@pytest.fixture
def received() -> Iterator[tuple[list[Report], ReceiverServer, ReceiverServer]]:
    reports: list[Report] = []

    async def on_report(report: Report) -> None:
        await asyncio.sleep(0)
        reports.append(report)

    def failing(report: Report) -> None:
        raise RuntimeError("database down")

    ok, broken = (
        ReceiverServer(ReportReceiver(KEY, on_report)),
        ReceiverServer(ReportReceiver(KEY, failing)),
    )
    try:
        yield reports, ok, broken
    finally:
        ok.stop()
        broken.stop()


def _post(url: str, body: bytes) -> tuple[httpx.Response, dict[str, Any]]:
    response = httpx.post(url, content=body, timeout=5)
    return response, orjson.loads(response.content)


def test_receiver_accepts_a_report(received: Any) -> None:
    reports, ok, _ = received
    response, answer = _post(ok.url, push())
    assert read_answer(response.status_code, response.content) == (True, "OK")
    assert answer["METHOD"] == "SMS_PUSH_REPORT" and answer["TYPE"] == "ANSWER"
    assert answer["SERIAL"] == 42 and answer["RESULT_DESC"] == "OK"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", answer["TIME"])
    [report] = reports
    assert report.sms_uid == "0MWWBXC46SZZVVU4600000" and report.serial == 42
    assert (report.country_code, report.dest_msisdn) == (852, "67000011")
    assert report.sms_state is SmsState.DELIVERED and report.result_desc == "DELIVERED"
    assert report.final and report.source_msisdn == "CloudSMS"
    assert report.customer_body == {"order": "A-1", "n": 2.5}
    assert report.sms_count == 2 and report.fee == decimal.Decimal("0.105")
    assert report.currency == "HKD"
    assert report.report_time == "2025-11-25 00:00:03"
    assert report.reported_at is not None and report.reported_at.timestamp() == 1_764_000_003


def test_receiver_refusals(received: Any) -> None:
    reports, ok, broken = received
    cases = [
        (push("W" * 128), 5),  # wrong AUTH_KEY
        (b"", ResultCode.EMPTY_BODY),
        (b"{not json", ResultCode.INVALID_CONTEXT),
        (b"[]", ResultCode.EMPTY_DATA),
        (push(state=12), ResultCode.INVALID_PARAMETER),
        (push().replace(b'"SMS_UID"', b'"SMS_UIX"'), ResultCode.LOST_INFO),
        (push().replace(b"SMS_PUSH_REPORT", b"SMS_SEND_REQUEST"), ResultCode.INVALID_PARAMETER),
    ]
    for body, code in cases:
        response, answer = _post(ok.url, body)
        assert response.status_code == 200 and answer["RESULT_CODE"] == code, body[:40]
    assert reports == []
    # The callback raising answers Unknown_error, so the platform pushes the report again.
    response, answer = _post(broken.url, push())
    assert answer["RESULT_CODE"] == 2 and answer["SERIAL"] == 42
    assert read_answer(response.status_code, response.content)[0] is False
    assert httpx.get(ok.url, timeout=5).status_code == 405


def _mo_push(key: str = KEY) -> bytes:
    """The platform's own SMS_PUSH_MO bytes (cloudsms.domain.inbound.build_mo_push)."""
    mo = DueMo(id=1, mo_uid="0MWWBXD9Q1ZZVVU4600000", customer_id=1, auth_key=key, serial=7,
               callback_url="http://x/", callback_ca_pem=None, source="85261234567",
               destination="85230001234", text="好的 see you", parts=2, keyword="好的",
               received_ms=1_764_000_003_000, created_ms=0, attempts=0,
               next_attempt_ms=0)  # fmt: skip
    return build_mo_push(mo, push_ms=1_764_000_005_000)


def test_receiver_takes_inbound_messages_when_given_on_mo() -> None:
    got: list[InboundMessage] = []
    with_mo = ReceiverServer(ReportReceiver(KEY, lambda r: None, on_mo=got.append))
    reports_only = ReceiverServer(ReportReceiver(KEY, lambda r: None))
    try:
        response, answer = _post(with_mo.url, _mo_push())
        assert read_answer(response.status_code, response.content) == (True, "OK")
        assert (answer["METHOD"], answer["SERIAL"]) == ("SMS_PUSH_MO", 7)
        [mo] = got
        assert (mo.mo_uid, mo.source_msisdn, mo.dest_msisdn) == (
            "0MWWBXD9Q1ZZVVU4600000", "85261234567", "85230001234")  # fmt: skip
        assert (mo.content, mo.keyword, mo.sms_count) == ("好的 see you", "好的", 2)
        assert mo.receive_time == "2025-11-25 00:00:03"
        _, refused = _post(with_mo.url, _mo_push("W" * 128))
        assert refused["RESULT_CODE"] == ResultCode.CHANNEL_NOT_EXIST and len(got) == 1
        # Without on_mo the push is refused, so the platform keeps it and pushes it again.
        _, unwanted = _post(reports_only.url, _mo_push())
        assert unwanted["RESULT_CODE"] == ResultCode.INVALID_PARAMETER
    finally:
        with_mo.stop()
        reports_only.stop()
