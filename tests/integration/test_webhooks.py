"""The report pusher against real callback servers that misbehave on purpose.

The callback server is a small raw asyncio HTTP/1.1 server (keep-alive, optional TLS with a
required client certificate) whose answer to each request comes from a script: answer, answer
late, answer 500, answer 200 with a wrong RESULT_CODE / non-JSON / nothing, or drop the
connection mid-request. It records every packet it accepted, the connections it saw and the
most requests it ever had in flight, so the tests check what customers rely on: every report
arrives, exactly as documented, in state order per SMS_UID, oldest first, without overload.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import select, update

from cloudsms.domain.codes import LOCAL_REJECTED
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.workers.expiry import ExpiryWorker
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings

UIDS = UidGenerator()
OK_ANSWER = b'{"METHOD":"SMS_PUSH_REPORT","TYPE":"ANSWER","SERIAL":1,"RESULT_CODE":1}'
#: Fast retries so a test sees many attempts in a second.
FAST = WebhookSettings(
    push_timeout_s=0.5,
    connect_timeout_s=0.5,
    lease_s=2.0,
    poll_s=0.05,
    flush_interval_s=0.02,
    retry_base_s=0.05,
    retry_max_delay_s=0.2,
    retry_jitter=0.0,
    concurrency_per_host=4,
    max_queued_per_customer=64,
    stop_grace_s=2.0,
)
DOCUMENT_KEYS = ["METHOD", "AUTH_KEY", "TYPE", "SERIAL", "TIME", "REPORT_TIME", "SOURCE_MSISDN"]
DOCUMENT_KEYS += ["SMS_UID", "SMS_RESULT_LIST", "CUSTOMER_BODY", "SMS_COUNT", "FEE", "CURRENCY"]


# --------------------------------------------------------------------------- callback server

#: One scripted reaction: ("ok",) | ("status", code, body) | ("sleep", seconds) | ("drop",)
Action = tuple[Any, ...]


@dataclass
class Callback:
    """A raw HTTP/1.1 callback server; ``script(n)`` says how to treat the n-th request."""

    script: Callable[[int], Action] = lambda n: ("ok",)
    ssl_context: ssl.SSLContext | None = None
    port: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    peers: set[str] = field(default_factory=set)

    async def start(self) -> Callback:
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, ssl=self.ssl_context
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):  # Python 3.11 has no Server.close_clients()
                writer.transport.abort()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}/dr"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        self.peers.add(writer.get_extra_info("peername")[0])
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                n = self.requests
                self.requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    action = self.script(n)
                    if action[0] == "sleep":
                        await asyncio.sleep(action[1])
                        action = ("ok",)
                    if action[0] == "drop":
                        writer.transport.abort()
                        return
                    status, answer = (200, OK_ANSWER) if action[0] == "ok" else action[1:]
                    if status == 200 and answer == OK_ANSWER:
                        self.accepted.append(json.loads(body))
                    writer.write(
                        f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n"
                        "Content-Type: application/json\r\n\r\n".encode()
                        + answer
                    )
                    await writer.drain()
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # the test is over and the server stops
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def uids(self) -> list[str]:
        return [p["SMS_UID"] for p in self.accepted]


@pytest.fixture
async def callbacks() -> AsyncIterator[Callable[..., Any]]:
    started: list[Callback] = []

    async def make(**kw: Any) -> Callback:
        cb = await Callback(**kw).start()
        started.append(cb)
        return cb

    yield make
    for cb in started:
        await cb.stop()


# ------------------------------------------------------------------------------- store setup


@pytest.fixture
def rs(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def srs(sqlite_url: str) -> Iterator[Store]:
    """SQLite only: for the misbehaviour catalogue, where the engine is not the point."""
    s = Store.open(sqlite_url)
    try:
        yield s
    finally:
        s.close()


_names = iter(range(1, 10**6))
#: customer id → AUTH_KEY
AUTH_KEYS: dict[int, str] = {}


def customer(rs: Store, url: str | None, *, intermediate: bool = False) -> int:
    n = next(_names)
    with rs.engine.begin() as conn:
        pk = conn.execute(
            tables.customers.insert().values(
                name=f"c{n}",
                auth_key=f"{n:0128d}",
                enabled=True,
                currency="HKD",
                balance_micros=10**9,
                credit_limit_micros=0,
                report_intermediate=intermediate,
                callback_url=url,
                created_ms=0,
                updated_ms=0,
            )
        ).inserted_primary_key
    assert pk is not None
    AUTH_KEYS[int(pk[0])] = f"{n:0128d}"
    return int(pk[0])


def messages(rs: Store, cid: int, n: int, **kw: Any) -> list[str]:
    now = rs.now_ms()
    msgs = []
    for i in range(n):
        values: dict[str, Any] = {
            "sms_uid": UIDS.next_uid(),
            "customer_id": cid,
            "serial": 1,
            "country_code": 852,
            "dest_msisdn": f"9123{i:04d}",
            "route_name": "r",
            "sender": "CloudSMS",
            "content": "hi",
            "encoding": "gsm7",
            "segments": 2,
            "priority": 0,
            "send_at_ms": now,
            "customer_body": None,
            "state": MessageState.ACCEPTED,
            "result_desc": None,
            "detail": None,
            "fee_micros": 105_000,
            "currency": "HKD",
            "created_ms": now,
        }
        values.update(kw)
        msgs.append(NewMessage(**values))
    write = PacketWrite(
        customer_id=cid, packet_key=None, messages=tuple(msgs), answer=b"{}", created_ms=now
    )
    rs.accept_packets([write], replay_window_ms=0)
    return [m.sms_uid for m in msgs]


def report(rs: Store, uid: str, cid: int, state: int = 2, desc: str = "DELIVERED") -> None:
    with rs.engine.begin() as conn:
        rs.enqueue_report(
            conn,
            sms_uid=uid,
            customer_id=cid,
            sms_state=state,
            result_desc=desc,
            report_ms=rs.now_ms(),
            now_ms=rs.now_ms(),
        )


async def until(predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Poll ``predicate`` (blocking calls allowed: it runs in a thread) until true or fail."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(0.02)


async def settle(rs: Store, within: float = 15.0, *, pending: int = 0) -> None:
    """Wait until at most ``pending`` reports are pending."""
    await until(lambda: rs.report_counts().pending <= pending, within)


def outbox(rs: Store) -> list[Any]:
    o = tables.report_outbox
    with rs.engine.connect() as conn:
        return list(conn.execute(select(o).order_by(o.c.id)))


async def run_pusher(rs: Store, settings: WebhookSettings = FAST) -> ReportPusher:
    pusher = ReportPusher(rs, settings)
    await pusher.start()
    return pusher


# ------------------------------------------------------------------------------------- tests


async def test_every_report_arrives_exactly_as_documented(
    rs: Store, callbacks: Callable[..., Any]
) -> None:
    cb = await callbacks()
    cid = customer(rs, cb.url, intermediate=True)
    body = '{"order": "A-1", "n": [1, 2.50]}'
    a, b = messages(rs, cid, 2, customer_body=body)
    [rejected] = messages(
        rs, cid, 1, state=MessageState.REJECTED, result_desc=LOCAL_REJECTED, fee_micros=0
    )
    report(rs, a, cid, 1, "ENROUTE")
    report(rs, b, cid, 5, "UNDELIVERABLE")
    report(rs, a, cid, 2, "DELIVERED")
    pusher = await run_pusher(rs)
    try:
        await settle(rs)
    finally:
        await pusher.stop()

    assert sorted(cb.uids()) == sorted([a, a, b, rejected])
    for packet in cb.accepted:
        assert list(packet) == DOCUMENT_KEYS
        assert (packet["METHOD"], packet["TYPE"], packet["AUTH_KEY"]) == (
            "SMS_PUSH_REPORT",
            "REQUEST",
            AUTH_KEYS[cid],
        )
        assert packet["SOURCE_MSISDN"] == "CloudSMS"
        assert time.strptime(packet["TIME"], "%Y-%m-%d %H:%M:%S")
        assert time.strptime(packet["REPORT_TIME"], "%Y-%m-%d %H:%M:%S")
        [entry] = packet["SMS_RESULT_LIST"]
        assert list(entry) == ["COUNTRY_CODE", "DEST_MSISDN", "SMS_STATE", "RESULT_DESC"]
        assert entry["COUNTRY_CODE"] == 852
    by_uid = {uid: [p for p in cb.accepted if p["SMS_UID"] == uid] for uid in (a, b, rejected)}
    assert [p["SMS_RESULT_LIST"][0]["SMS_STATE"] for p in by_uid[a]] == [1, 2]  # state order
    assert by_uid[a][0]["CUSTOMER_BODY"] == {"order": "A-1", "n": [1, 2.5]}
    assert by_uid[a][0]["FEE"] == "0.105" and by_uid[a][0]["SMS_COUNT"] == 2
    [rej] = by_uid[rejected]
    assert rej["SMS_RESULT_LIST"][0]["SMS_STATE"] == 8
    assert rej["SMS_RESULT_LIST"][0]["RESULT_DESC"] == "LOCAL_REJECTED"
    assert rej["FEE"] == "0.00" and rej["CUSTOMER_BODY"] == {}
    assert sorted(p["SERIAL"] for p in cb.accepted) == [1, 2, 3, 4]
    assert all(r.done_ms is not None and r.last_error is None for r in outbox(rs))


@pytest.mark.parametrize(
    "failure",
    [
        ("sleep", 1.0),  # longer than the push timeout, then fine
        ("status", 500, OK_ANSWER),
        ("status", 200, b'{"RESULT_CODE": 268435457, "RESULT_DESC": "Invalid_parameter"}'),
        ("status", 200, b"<html>OK</html>"),
        ("status", 200, b""),
        ("status", 503, b""),
        ("drop",),
    ],
    ids=["slow", "500", "wrong-code", "not-json", "empty", "503", "drop"],
)
async def test_misbehaving_callback_still_gets_every_report(
    srs: Store, callbacks: Callable[..., Any], failure: Action
) -> None:
    # Every third request misbehaves: each report may fail several times, all must arrive.
    cb = await callbacks(script=lambda n: failure if n % 3 == 0 else ("ok",))
    cid = customer(srs, cb.url)
    uids = messages(srs, cid, 12)
    for uid in uids:
        report(srs, uid, cid)
    pusher = await run_pusher(srs)
    try:
        await settle(srs)
    finally:
        await pusher.stop()
    assert set(cb.uids()) == set(uids)
    rows = outbox(srs)
    assert all(r.done_ms is not None and r.last_error is None for r in rows)
    assert sum(r.attempts for r in rows) > len(uids)  # some were retried
    assert pusher.failed >= 1
    if failure[0] != "sleep":  # a timed-out request keeps the server busy after we gave up
        assert cb.max_in_flight <= FAST.concurrency_per_host


async def test_state_order_per_sms_uid_survives_failures(
    srs: Store, callbacks: Callable[..., Any]
) -> None:
    cb = await callbacks(script=lambda n: ("status", 500, b"") if n % 2 == 0 else ("ok",))
    cid = customer(srs, cb.url, intermediate=True)
    uids = messages(srs, cid, 5)
    for uid in uids:
        report(srs, uid, cid, 1, "ENROUTE")
    for uid in uids:
        report(srs, uid, cid, 6, "ACCEPTED")
        report(srs, uid, cid, 2, "DELIVERED")
    pusher = await run_pusher(srs)
    try:
        await settle(srs)
    finally:
        await pusher.stop()
    for uid in uids:
        states = [p["SMS_RESULT_LIST"][0]["SMS_STATE"] for p in cb.accepted if p["SMS_UID"] == uid]
        assert states == [1, 6, 2]


async def test_down_for_a_while_then_everything_oldest_first(
    srs: Store, callbacks: Callable[..., Any]
) -> None:
    with socket.socket() as s:  # a port where nothing listens: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/dr"
    cid = customer(srs, url)
    uids = messages(srs, cid, 30)
    for uid in uids:
        report(srs, uid, cid)
    settings = WebhookSettings(**{**_fields(FAST), "concurrency_per_host": 1})
    pusher = await run_pusher(srs, settings)
    try:
        await asyncio.sleep(1.0)
        rows = outbox(srs)
        assert all(r.done_ms is None for r in rows)
        # Probe mode: a refused callback gets about one attempt per backoff step, not 30 each.
        assert 2 <= sum(r.attempts for r in rows) <= 20
        assert "ClientConnectorError" in (rows[0].last_error or "")
        cb = await callbacks(port=port)
        await settle(srs)
    finally:
        await pusher.stop()
    assert cb.uids() == uids  # every report, oldest first
    assert cb.max_in_flight == 1


async def test_slow_customer_slows_only_itself_and_connections_are_reused(
    srs: Store, callbacks: Callable[..., Any]
) -> None:
    slow = await callbacks(script=lambda n: ("sleep", 0.3))
    fast = await callbacks()
    slow_cid, fast_cid = customer(srs, slow.url), customer(srs, fast.url)
    slow_uids = messages(srs, slow_cid, 16)
    fast_uids = messages(srs, fast_cid, 40)
    for uid in slow_uids:
        report(srs, uid, slow_cid)
    for uid in fast_uids:
        report(srs, uid, fast_cid)
    # A push timeout well above the slow answer, so a loaded machine cannot turn slowness into
    # timeouts (each closes its connection, which would hide whether connections are reused).
    patient = WebhookSettings(
        **{**_fields(FAST), "push_timeout_s": 3.0, "lease_s": max(FAST.lease_s, 10.0)}
    )
    pusher = await run_pusher(srs, patient)
    try:
        # The slow customer needs 16 x 0.3 s / 4 = 1.2 s; the fast one must not wait for it.
        await until(lambda: len(fast.accepted) == len(fast_uids), within=1.0)
        assert len(slow.accepted) < len(slow_uids)  # the slow one is still busy
        await settle(srs)
    finally:
        await pusher.stop()
    assert slow.max_in_flight <= FAST.concurrency_per_host
    assert set(slow.uids()) == set(slow_uids)
    # Keep-alive: a handful of connections carried all the pushes.
    assert fast.connections <= FAST.concurrency_per_host
    assert slow.connections <= FAST.concurrency_per_host


async def test_a_restart_in_the_middle_of_a_storm_loses_nothing(
    rs: Store, callbacks: Callable[..., Any]
) -> None:
    cb = await callbacks(script=lambda n: ("sleep", 0.2) if n % 2 else ("status", 500, b""))
    cid = customer(rs, cb.url)
    uids = messages(rs, cid, 40)
    for uid in uids:
        report(rs, uid, cid)
    abrupt = WebhookSettings(**{**_fields(FAST), "stop_grace_s": 0.0})
    first = await run_pusher(rs, abrupt)
    await until(lambda: cb.requests >= 6)
    await first.stop()  # in-flight pushes cancelled, claimed ones released or leased
    assert (await asyncio.to_thread(rs.report_counts)).pending > 0
    second = await run_pusher(rs)
    try:
        await settle(rs, within=30)
    finally:
        await second.stop()
    assert set(cb.uids()) == set(uids)  # at least once each


async def test_give_up_after_the_window(srs: Store, callbacks: Callable[..., Any]) -> None:
    cb = await callbacks(script=lambda n: ("status", 500, b""))
    cid = customer(srs, cb.url)
    nowhere = customer(srs, None)
    for uid in messages(srs, cid, 3):
        report(srs, uid, cid)
    [lost] = messages(srs, nowhere, 1)
    report(srs, lost, nowhere)
    settings = WebhookSettings(**{**_fields(FAST), "retry_give_up_after_s": 0.3})
    pusher = await run_pusher(srs, settings)
    try:
        await settle(srs)
    finally:
        await pusher.stop()
    counts = srs.report_counts()
    assert (counts.given_up, counts.done, counts.pending) == (4, 0, 0)
    rows = {r.sms_uid: r for r in outbox(srs)}
    assert rows[lost].attempts == 0 and "no callback_url" in rows[lost].last_error
    assert all(r.attempts >= 2 for uid, r in rows.items() if uid != lost)
    assert cb.accepted == []


async def test_expired_messages_are_reported(srs: Store, callbacks: Callable[..., Any]) -> None:
    cb = await callbacks()
    cid = customer(srs, cb.url)
    old, fresh = messages(srs, cid, 2)
    m = tables.messages
    now = srs.now_ms()
    with srs.engine.begin() as conn:
        for uid, at in ((old, now - 26 * 3_600_000), (fresh, now)):
            conn.execute(
                update(m)
                .where(m.c.sms_uid == uid)
                .values(state=MessageState.SUBMITTED.value, submitted_ms=at)
            )
    pusher = await run_pusher(srs)
    expiry = ExpiryWorker(srs, expire_after_s=25 * 3600, interval_s=0.05, pusher=pusher)
    await expiry.start()
    try:
        await until(lambda: bool(cb.accepted))
        await settle(srs)
    finally:
        await expiry.stop()
        await pusher.stop()
    [packet] = cb.accepted
    assert packet["SMS_UID"] == old
    assert packet["SMS_RESULT_LIST"][0]["SMS_STATE"] == 3
    assert packet["SMS_RESULT_LIST"][0]["RESULT_DESC"] == "EXPIRED"
    assert expiry.expired == 1
    # A late receipt after EXPIRED is not a second final report.
    report(srs, old, cid, 2, "DELIVERED")
    assert len(outbox(srs)) == 1


async def test_outbound_source_address_and_wake_from_another_thread(
    srs: Store, callbacks: Callable[..., Any]
) -> None:
    cb = await callbacks()
    cid = customer(srs, cb.url)
    slow_poll = {**_fields(FAST), "source_address": "127.0.0.2", "poll_s": 30.0}
    pusher = await run_pusher(srs, WebhookSettings(**slow_poll))
    try:
        await asyncio.sleep(0.1)  # the pusher is now idle, polling only every 30 s
        [uid] = messages(srs, cid, 1)
        report(srs, uid, cid)
        await asyncio.to_thread(pusher.wake)  # the dispatcher's nudge, from its own thread
        await until(lambda: bool(cb.accepted), within=3.0)
    finally:
        await pusher.stop()
    assert cb.uids() == [uid]
    assert cb.peers == {"127.0.0.2"}


# ------------------------------------------------------------------------------ mutual TLS


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    customer_ca, platform_ca, rogue_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server_cert = customer_ca.issue_cert("127.0.0.1")
    platform = platform_ca.issue_cert("cloudsms-platform")
    client_cert = tmp_path / "platform.pem"
    platform.private_key_and_cert_chain_pem.write_to_path(str(client_cert))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    platform_ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # the customer insists on our certificate
    pems = {"customer_ca_pem": customer_ca.cert_pem, "rogue_ca_pem": rogue_ca.cert_pem}
    return {
        "server_ctx": server_ctx,
        "client_cert": str(client_cert),
        **{k: pem.bytes().decode("ascii") for k, pem in pems.items()},
    }


async def test_mutual_tls_with_a_per_customer_ca(
    srs: Store, callbacks: Callable[..., Any], pki: dict[str, Any]
) -> None:
    cb = await callbacks(ssl_context=pki["server_ctx"])
    good, wrong_ca, no_cert = (customer(srs, cb.url) for _ in range(3))
    uids = {cid: messages(srs, cid, 2) for cid in (good, wrong_ca, no_cert)}
    for cid, batch in uids.items():
        for uid in batch:
            report(srs, uid, cid)
    # Each customer's CA is its own (customers.callback_ca_pem), not the platform's.
    cas = {good: "customer_ca_pem", wrong_ca: "rogue_ca_pem", no_cert: "customer_ca_pem"}
    for cid, pem in cas.items():
        srs.set_callback_ca(cid, pki[pem])
    pusher = await run_pusher(
        srs, WebhookSettings(**{**_fields(FAST), "client_cert": pki["client_cert"]})
    )
    try:
        await settle(srs, pending=2)  # the wrong-CA customer's reports keep failing
        await asyncio.sleep(0.3)
    finally:
        await pusher.stop()
    assert sorted(cb.uids()) == sorted(uids[good] + uids[no_cert])
    failing = [r for r in outbox(srs) if r.customer_id == wrong_ca]
    assert all(r.done_ms is None and r.attempts >= 1 for r in failing)
    assert all("certificate" in (r.last_error or "").lower() for r in failing)

    # Without the platform's client certificate the customer's server refuses the handshake.
    for uid in messages(srs, no_cert, 1):
        report(srs, uid, no_cert)
    before = len(cb.accepted)
    pusher = await run_pusher(srs, FAST)
    try:
        await asyncio.sleep(0.5)
    finally:
        await pusher.stop()
    assert len(cb.accepted) == before
    assert any(
        r.attempts >= 1 and r.done_ms is None for r in outbox(srs) if r.customer_id == no_cert
    )


def _fields(settings: WebhookSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
