"""The UIP listener's own HTTP/1.1 protocol (cloudsms.api.http_protocol), over real sockets.

What uvicorn used to do for us and the protocol now does itself: answers to pipelined requests in
their order, keep-alive reuse, HTTP/1.0 and ``Connection: close`` closing after the answer, a
body arriving in many reads or chunked, ``Expect: 100-continue``, HEAD, and a graceful shutdown
that lets an answer under way finish before the platform stops. The hostile-client limits are in
test_hostile_http.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from platform_fixtures import RunningServer
from seed import Seeded, seed_customer

from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.runtime.uip_server import UipServer
from cloudsms.storage.store import Store

SETTINGS: dict[str, Any] = {"role": "api", "config_poll_s": 0.05, "max_body_bytes": 4096}


def packet(seeded: Seeded, serial: int) -> bytes:
    return orjson.dumps(
        {
            "METHOD": "SMS_SEND_REQUEST",
            "TYPE": "REQUEST",
            "SERIAL": serial,
            "TIME": f"t{serial}",
            "AUTH_KEY": seeded.auth_key,
            "ROUTE_ID": seeded.route,
            "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
            "SMS_CONTENT": f"protocol test {serial}",
            "VERSION": "2021-01-01",
        }
    )


def post(body: bytes, *headers: bytes, version: bytes = b"1.1") -> bytes:
    lines = [b"POST /dave/io HTTP/" + version, b"Host: uip", *headers]
    if not any(h.lower().startswith(b"transfer-encoding") for h in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class Responses:
    """Reads responses one by one from a socket, keeping what follows one for the next."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        sock.settimeout(10)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError(f"closed by the server; unread: {self.buffer!r}")
        self.buffer += chunk

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split(" ", 2)[1]), headers

    def next(self, *, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head()
        length = 0 if head_request else int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True once the server has closed the connection, with nothing more sent."""
        try:
            return self.buffer == b"" and self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True


def result(body: bytes) -> tuple[int, int]:
    answer = orjson.loads(body)
    return answer["SERIAL"], answer["RESULT_CODE"]


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Seeded]:
    url = f"sqlite:///{tmp_path_factory.mktemp('protocol') / 'cloudsms.db'}"
    store = Store.open(url)
    try:
        return url, seed_customer(store.engine)
    finally:
        store.close()


@pytest.fixture(scope="module")
def server(seeded_url: tuple[str, Seeded]) -> Iterator[RunningServer]:
    settings = Settings.load(environ={}, database_url=seeded_url[0], **SETTINGS)
    with RunningServer(settings) as running:
        running.wait_config(lambda: bool(running.platform.config.current.snapshot.customers_by_key))
        yield running


@pytest.fixture
def seeded(seeded_url: tuple[str, Seeded]) -> Seeded:
    return seeded_url[1]


@pytest.fixture
def conn(server: RunningServer) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with sock:
        yield sock


def test_pipelined_requests_are_answered_in_their_order(
    conn: socket.socket, seeded: Seeded
) -> None:
    """Four requests in one write: two packets that go through the store, a health check and
    an empty one answered at once; the answers come back in the order of the requests."""
    conn.sendall(
        post(packet(seeded, 101))
        + b"GET /health HTTP/1.1\r\nHost: uip\r\n\r\n"
        + post(b"[]")
        + post(packet(seeded, 102))
    )
    responses = Responses(conn)
    status, _, body = responses.next()
    assert (status, result(body)) == (200, (101, ResultCode.OK))
    status, headers, body = responses.next()
    assert (status, body, headers["content-type"]) == (200, b'{"status":"ok"}', "application/json")
    status, _, body = responses.next()
    assert (status, result(body)) == (200, (0, ResultCode.EMPTY_DATA))
    status, headers, body = responses.next()
    assert (status, result(body)) == (200, (102, ResultCode.OK))
    assert "connection" not in headers  # still open: keep-alive


def test_keep_alive_serves_many_requests_on_one_connection(
    conn: socket.socket, seeded: Seeded
) -> None:
    responses = Responses(conn)
    for serial in range(111, 116):
        conn.sendall(post(packet(seeded, serial)))
        status, headers, body = responses.next()
        assert (status, result(body)) == (200, (serial, ResultCode.OK))
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert int(headers["content-length"]) == len(body)
        assert "date" in headers and "connection" not in headers


@pytest.mark.parametrize(
    "version_and_headers",
    [(b"1.0", ()), (b"1.0", (b"Connection: keep-alive",)), (b"1.1", (b"Connection: close",))],
)
def test_http_1_0_and_connection_close_are_answered_then_closed(
    conn: socket.socket, seeded: Seeded, version_and_headers: tuple[bytes, tuple[bytes, ...]]
) -> None:
    version, headers = version_and_headers
    conn.sendall(post(packet(seeded, 120), *headers, version=version))
    responses = Responses(conn)
    status, response_headers, body = responses.next()
    assert (status, result(body)) == (200, (120, ResultCode.OK))
    assert response_headers["connection"] == "close"
    assert responses.closed()


def test_answers_held_for_the_loop_iteration_leave_before_a_closing_answer(
    conn: socket.socket, seeded: Seeded
) -> None:
    """Answers leave in one burst per loop iteration (``transport.write_batch``); the answer
    that closes the connection is written at once, so the batch is flushed before it. The
    health check is answered in the same call that queued the packet's answer: that answer
    must still come first, then the closing one."""
    conn.sendall(
        post(packet(seeded, 125))
        + b"GET /health HTTP/1.1\r\nHost: uip\r\nConnection: close\r\n\r\n"
    )
    responses = Responses(conn)
    status, headers, body = responses.next()
    assert (status, result(body)) == (200, (125, ResultCode.OK))
    assert "connection" not in headers
    status, headers, body = responses.next()
    assert (status, body, headers["connection"]) == (200, b'{"status":"ok"}', "close")
    assert responses.closed()


def test_a_body_split_over_many_reads(conn: socket.socket, seeded: Seeded) -> None:
    body = packet(seeded, 130)
    request = post(body)
    head_end = request.index(b"\r\n\r\n") + 4
    conn.sendall(request[:head_end])
    for start in range(0, len(body), 7):
        conn.sendall(body[start : start + 7])
        time.sleep(0.002)  # separate segments, so separate reads on the server
    status, _, answer = Responses(conn).next()
    assert (status, result(answer)) == (200, (130, ResultCode.OK))


def test_a_chunked_body(conn: socket.socket, seeded: Seeded) -> None:
    body = packet(seeded, 140)
    chunks = [body[i : i + 50] for i in range(0, len(body), 50)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    conn.sendall(post(b"", b"Transfer-Encoding: chunked") + encoded)
    status, _, answer = Responses(conn).next()
    assert (status, result(answer)) == (200, (140, ResultCode.OK))


def test_expect_100_continue(conn: socket.socket, seeded: Seeded) -> None:
    body = packet(seeded, 150)
    request = post(body, b"Expect: 100-continue")
    head_end = request.index(b"\r\n\r\n") + 4
    conn.sendall(request[:head_end])
    responses = Responses(conn)
    assert responses.head() == (100, {})
    conn.sendall(body)
    status, _, answer = responses.next()
    assert (status, result(answer)) == (200, (150, ResultCode.OK))


def test_expect_100_continue_over_the_limit_gets_413_instead(conn: socket.socket) -> None:
    conn.sendall(
        b"POST /dave/io HTTP/1.1\r\nHost: uip\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5000\r\n\r\n"
    )
    responses = Responses(conn)
    status, headers, body = responses.next()
    assert (status, result(body), headers["connection"]) == (413, (0, 0x10000003), "close")
    assert responses.closed()


def test_a_body_over_the_limit_behind_a_good_request(conn: socket.socket, seeded: Seeded) -> None:
    """The good one is answered; the oversized one gets its 413 in its turn, then the close."""
    conn.sendall(post(packet(seeded, 160)) + post(b" " * 5000))
    responses = Responses(conn)
    status, _, body = responses.next()
    assert (status, result(body)) == (200, (160, ResultCode.OK))
    status, headers, body = responses.next()
    assert (status, headers["connection"]) == (413, "close")
    assert responses.closed()


def test_head_describes_the_body_without_sending_it(conn: socket.socket) -> None:
    conn.sendall(
        b"HEAD /health HTTP/1.1\r\nHost: uip\r\n\r\nGET /health HTTP/1.1\r\nHost: uip\r\n\r\n"
    )
    responses = Responses(conn)
    status, headers, body = responses.next(head_request=True)
    assert (status, headers["content-length"], body) == (200, "15", b"")
    # The next response starts right after the head: no body was sent for HEAD.
    status, _, body = responses.next()
    assert (status, body) == (200, b'{"status":"ok"}')


def test_an_idle_keep_alive_connection_is_closed(seeded_url: tuple[str, Seeded]) -> None:
    """After its answer, a connection that sends nothing more is closed once ``keep_alive_s``
    has passed (75 s in production; 0.3 s here), without a word."""
    settings = Settings.load(environ={}, database_url=seeded_url[0], **SETTINGS)
    running = RunningServer(settings)
    listener = running.server.listener
    listener.limits = dataclasses.replace(listener.limits, keep_alive_s=0.3)
    with running, socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(post(b"[]"))
        responses = Responses(sock)
        status, headers, _ = responses.next()
        assert status == 200 and "connection" not in headers
        assert responses.closed()


def test_graceful_shutdown_finishes_the_answer_under_way(seeded_url: tuple[str, Seeded]) -> None:
    """Shutdown begins while a packet is with the service (being committed): its answer still
    arrives, saying that the connection closes, the packet is stored, and only then does the
    platform stop."""
    url, seeded = seeded_url
    uip = UipServer(Settings.load(environ={}, database_url=url, **SETTINGS), port=0)
    events: list[str] = []

    async def run() -> bytes:
        await uip.startup()
        platform_stop = uip.platform.stop

        async def stop() -> None:
            events.append(f"platform stopped, {len(uip.listener.tasks)} answers under way")
            await platform_stop()

        uip.platform.stop = stop  # type: ignore[method-assign]
        while not uip.platform.config.current.snapshot.customers_by_key:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", uip.port)
        writer.write(post(packet(seeded, 170)))
        while not uip.listener.tasks:  # noqa: ASYNC110 - until the packet is with the service
            await asyncio.sleep(0)
        shutdown = asyncio.create_task(uip.shutdown())
        data = await reader.read()  # to the end: the server closes after the answer
        await shutdown
        writer.close()
        return data

    loop = asyncio.new_event_loop()
    try:
        data = loop.run_until_complete(run())
    finally:
        loop.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in head.lower()
    assert result(body) == (170, ResultCode.OK)
    assert events == ["platform stopped, 0 answers under way"]
    store = Store.open(url)
    try:
        assert store.get_message(orjson.loads(body)["DETAIL_LIST"][0]["SMS_UID"]) is not None
    finally:
        store.close()
