"""The lean HTTP/1.1 client (transport/http_client.py) against real servers that misbehave.

The server is a raw asyncio HTTP/1.1 server (optionally TLS, optionally requiring a client
certificate) whose reaction to the n-th request comes from a script: raw bytes to answer, hold
the answer until released, drop the connection, or answer and then close. It records each
request with the connection it came on, and the most requests it ever had in flight, so the
tests see what goes over the wire: how many connections, which request on which. Every test
runs on asyncio's own loop and on uvloop (conftest.py).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from cloudsms.transport.http_client import HttpClient, HttpClientError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


@dataclass
class Request:
    conn: int  #: which connection (0, 1, …) it came on
    head: str
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


#: What the server does with a request: bytes → write them (keep the connection);
#: ("close",) → drop the connection unanswered; ("send_close", bytes) → write, then close;
#: ("hold", bytes) → write once ``gate`` is set; ("partial", bytes) → write, then drop.
Action = bytes | tuple[Any, ...]


@dataclass
class Server:
    script: Callable[[int], Action] = lambda n: OK
    ssl_context: ssl.SSLContext | None = None
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            await self.server.wait_closed()

    def url(self, path: str = "/dr") -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.connections
        self.connections += 1
        self.writers.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request = Request(conn, head, b"")
                request.body = await reader.readexactly(int(request.header("content-length") or 0))
                n = len(self.requests)
                self.requests.append(request)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    action = self.script(n)
                    if isinstance(action, bytes):
                        writer.write(action)
                        await writer.drain()
                        continue
                    if action[0] == "hold":
                        await self.gate.wait()
                        writer.write(action[1])
                        await writer.drain()
                        continue
                    if action[0] in ("send_close", "partial"):
                        writer.write(action[1])
                        await writer.drain()
                    if action[0] == "partial":
                        writer.transport.abort()
                    return
                finally:
                    self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.closed += 1
            self.writers.discard(writer)
            writer.close()


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def servers() -> AsyncIterator[ServerFactory]:
    started: list[Server] = []

    async def make(**kw: Any) -> Server:
        server = await Server(**kw).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient(max_per_origin=4, connect_timeout_s=2.0, timeout_s=5.0, max_body=1000)
    yield c
    await c.close()


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``predicate`` until true, or fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(0.01)


def answer(body: bytes, *headers: str, status: str = "200 OK", version: str = "1.1") -> bytes:
    lines = [f"HTTP/{version} {status}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ------------------------------------------------------------------------------ keep-alive


async def test_many_requests_one_connection_and_what_goes_over_the_wire(
    servers: ServerFactory, client: HttpClient
) -> None:
    server = await servers(
        script=lambda n: answer(b'{"n":%d}' % n, f"Content-Length: {6 + len(str(n))}")
    )
    target = client.target(server.url("/dr?a=1"))
    for n in range(20):
        response = await client.post(target, b'{"SERIAL":%d}' % n)
        assert (response.status, response.body) == (200, b'{"n":%d}' % n)
    assert server.connections == 1
    first = server.requests[0]
    assert first.head.startswith("POST /dr?a=1 HTTP/1.1\r\n")
    assert first.header("host") == f"127.0.0.1:{server.port}"
    assert first.header("content-type") == "application/json"
    assert first.header("content-length") == "12" and first.body == b'{"SERIAL":0}'
    assert [r.body for r in server.requests] == [b'{"SERIAL":%d}' % n for n in range(20)]


async def test_url_userinfo_is_basic_auth(servers: ServerFactory, client: HttpClient) -> None:
    server = await servers()
    await client.post(client.target(f"http://us%40er:p%3Ass@127.0.0.1:{server.port}/x"), b"{}")
    assert server.requests[0].header("authorization") == "Basic dXNAZXI6cDpzcw=="  # us@er:p:ss


async def test_request_heads_are_built_once_per_target(client: HttpClient) -> None:
    plain = client.target("HTTP://Example.COM")
    assert plain.head == (
        b"POST / HTTP/1.1\r\nHost: example.com\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
    )
    v6 = client.target("https://[::1]:8443/a b/ü?q=1")
    assert v6.head.startswith(b"POST /a%20b/%C3%BC?q=1 HTTP/1.1\r\nHost: [::1]:8443\r\n")
    assert v6.origin == "[::1]:8443" and v6.ssl is not None
    # Targets of one origin (and TLS context) share one pool; another context is another pool.
    assert client.target("https://[::1]:8443/other").pool is v6.pool
    assert (
        client.target("https://[::1]:8443/", ssl=ssl.create_default_context()).pool is not v6.pool
    )
    assert b"Host: xn--bcher-kva.example\r\n" in client.target("http://bücher.example/").head


async def test_a_url_that_is_not_http_is_refused_at_once(client: HttpClient) -> None:
    for url in ("ftp://example.com/x", "http:///nohost", "http://h:99999/"):
        with pytest.raises(HttpClientError) as err:
            client.target(url)
        assert err.value.kind == "url"


async def test_concurrency_is_bounded_per_origin(servers: ServerFactory) -> None:
    server = await servers(script=lambda n: ("hold", OK))
    other = await servers()
    c = HttpClient(max_per_origin=3, connect_timeout_s=2.0, timeout_s=10.0)
    try:
        target = c.target(server.url())
        pushes = [asyncio.create_task(c.post(target, b"{}")) for _ in range(10)]
        await until(lambda: server.in_flight == 3)
        # Another origin has its own bound: not held up by the full one.
        assert (await c.post(c.target(other.url()), b"{}")).status == 200
        await asyncio.sleep(0.1)  # the other seven wait for a slot; none reaches the server
        assert server.in_flight == 3 and len(server.requests) == 3
        server.gate.set()
        assert [r.status for r in await asyncio.gather(*pushes)] == [200] * 10
    finally:
        await c.close()
    assert server.max_in_flight == 3
    assert server.connections == 3  # waiting requests took the freed connections


# ------------------------------------------------------------------------ closed connections


async def test_server_closing_an_idle_connection_is_noticed(
    servers: ServerFactory, client: HttpClient
) -> None:
    server = await servers(script=lambda n: ("send_close", OK) if n == 0 else OK)
    target = client.target(server.url())
    assert (await client.post(target, b"{}")).status == 200  # answered without Connection: close
    await until(lambda: not target.pool.idle)  # the FIN takes it out of the pool
    assert (await client.post(target, b"{}")).status == 200
    assert server.connections == 2 and len(server.requests) == 2


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_fresh_one(
    servers: ServerFactory, client: HttpClient
) -> None:
    # The server drops the second request unanswered, as a server that timed the idle
    # connection out just as the request arrived would.
    server = await servers(script=lambda n: ("close",) if n == 1 else OK)
    target = client.target(server.url())
    await client.post(target, b"{}")
    assert (await client.post(target, b"{}")).status == 200
    assert [r.conn for r in server.requests] == [0, 0, 1]


async def test_no_retry_on_a_fresh_connection_or_once_the_answer_started(
    servers: ServerFactory, client: HttpClient
) -> None:
    fresh = await servers(script=lambda n: ("close",))
    with pytest.raises(HttpClientError) as err:
        await client.post(client.target(fresh.url()), b"{}")
    assert err.value.kind == "closed" and not err.value.response_started
    assert "closed before the answer" in str(err.value)
    assert len(fresh.requests) == 1

    half = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"
    started = await servers(script=lambda n: ("partial", half) if n == 1 else OK)
    target = client.target(started.url())
    await client.post(target, b"{}")
    with pytest.raises(HttpClientError) as err:
        await client.post(target, b"{}")
    assert err.value.kind == "closed" and err.value.response_started
    assert len(started.requests) == 2  # not sent again: the server may have acted on it


async def test_connection_close_and_http_1_0_are_honoured(
    servers: ServerFactory, client: HttpClient
) -> None:
    scripts: list[Action] = [
        ("send_close", answer(b"{}", "Content-Length: 2", "Connection: close")),
        ("send_close", answer(b'{"until":"eof"}', version="1.0")),  # body ends at the close
        answer(b"{}", "Content-Length: 2", version="1.0"),  # 1.0 without keep-alive: closed
        OK,
        OK,
    ]
    server = await servers(script=lambda n: scripts[n])
    target = client.target(server.url())
    bodies = [(await client.post(target, b"{}")).body for _ in scripts]
    assert bodies == [b"{}", b'{"until":"eof"}', b"{}", b"{}", b"{}"]
    assert [r.conn for r in server.requests] == [0, 1, 2, 3, 3]


# ---------------------------------------------------------------------------------- bodies


async def test_chunked_answer(servers: ServerFactory, client: HttpClient) -> None:
    chunked = answer(b"5\r\n{\"RES\r\n9\r\nULT_CODE\"\r\n3\r\n:1}\r\n0\r\n\r\n",
                     "Transfer-Encoding: chunked")  # fmt: skip
    server = await servers(script=lambda n: chunked)
    target = client.target(server.url())
    for _ in range(3):
        assert (await client.post(target, b"{}")).body == b'{"RESULT_CODE":1}'
    assert server.connections == 1  # a chunked answer read to its end keeps the connection


async def test_an_oversized_answer_is_cut_and_its_connection_closed(
    servers: ServerFactory, client: HttpClient
) -> None:
    big = b"x" * 100_000
    scripts: list[Action] = [
        answer(big, f"Content-Length: {len(big)}"),
        answer(b"%x\r\n%b\r\n0\r\n\r\n" % (len(big), big), "Transfer-Encoding: chunked"),
        OK,
    ]
    server = await servers(script=lambda n: scripts[n])
    target = client.target(server.url())
    responses = [await client.post(target, b"{}") for _ in scripts]
    assert [r.body for r in responses] == [big[:1000], big[:1000], b"{}"]  # max_body=1000
    assert [r.conn for r in server.requests] == [0, 1, 2]


async def test_a_malformed_answer_is_a_protocol_error(
    servers: ServerFactory, client: HttpClient
) -> None:
    server = await servers(script=lambda n: b"SMTP ready\r\n\r\n")
    with pytest.raises(HttpClientError) as err:
        await client.post(client.target(server.url()), b"{}")
    assert err.value.kind == "protocol" and "bad HTTP response" in str(err.value)


# ------------------------------------------------------------------------- time and refusal


async def test_a_slow_server_times_out(servers: ServerFactory) -> None:
    server = await servers(script=lambda n: ("hold", OK))
    c = HttpClient(max_per_origin=2, connect_timeout_s=2.0, timeout_s=0.2)
    try:
        with pytest.raises(HttpClientError) as err:
            await c.post(c.target(server.url()), b"{}")
        assert err.value.kind == "timeout" and "timeout after 0.2 s" in str(err.value)
        await until(lambda: not c.connections)  # a half-answered connection is not kept
    finally:
        await c.close()


async def test_waiting_for_a_slot_counts_against_the_timeout(servers: ServerFactory) -> None:
    server = await servers(script=lambda n: ("hold", OK))
    c = HttpClient(max_per_origin=1, connect_timeout_s=2.0, timeout_s=0.3)
    try:
        target = c.target(server.url())
        first = asyncio.create_task(c.post(target, b"{}"))
        await until(lambda: server.in_flight == 1)
        started = asyncio.get_running_loop().time()
        with pytest.raises(HttpClientError) as err:  # the only slot stays busy
            await c.post(target, b"{}")
        assert err.value.kind == "timeout" and "timeout after 0.3 s" in str(err.value)
        assert asyncio.get_running_loop().time() - started < 2.0
        with pytest.raises(HttpClientError) as err:
            await first  # held by the server: the sweep ends it too
        assert err.value.kind == "timeout"
    finally:
        await c.close()


async def test_a_refused_port(client: HttpClient) -> None:
    with socket.socket() as s:  # bound, not listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(HttpClientError) as err:
            await client.post(client.target(f"http://127.0.0.1:{port}/dr"), b"{}")
    assert err.value.kind == "connect"
    assert f"cannot connect to 127.0.0.1:{port}" in str(err.value)


async def test_close_closes_every_connection(servers: ServerFactory) -> None:
    a, b = await servers(), await servers(script=lambda n: ("hold", OK))
    c = HttpClient(max_per_origin=2, connect_timeout_s=2.0, timeout_s=5.0)
    await c.post(c.target(a.url()), b"{}")
    busy = asyncio.create_task(c.post(c.target(b.url()), b"{}"))
    await until(lambda: b.in_flight == 1)
    await c.close()
    with pytest.raises(HttpClientError):
        await busy
    assert not c.connections
    b.gate.set()  # b's handler answers into a closed connection and notices
    await until(lambda: a.closed == 1 and b.closed == 1)


# ------------------------------------------------------------------------------------- TLS


@pytest.fixture
def pki() -> dict[str, Any]:
    """A callback's private CA and certificate, the platform's client certificate, a rogue CA."""
    server_ca, client_ca, rogue_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    mutual_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(mutual_ctx)
    client_ca.configure_trust(mutual_ctx)
    mutual_ctx.verify_mode = ssl.CERT_REQUIRED
    trusting, rogue = ssl.create_default_context(), ssl.create_default_context()
    server_ca.configure_trust(trusting)
    rogue_ca.configure_trust(rogue)
    with_cert = ssl.create_default_context()
    server_ca.configure_trust(with_cert)
    client_ca.issue_cert("cloudsms-platform").configure_cert(with_cert)
    return {"server": server_ctx, "mutual": mutual_ctx, "trusting": trusting, "rogue": rogue,
            "with_cert": with_cert}  # fmt: skip


async def test_tls_with_a_private_ca(
    servers: ServerFactory, client: HttpClient, pki: dict[str, Any]
) -> None:
    server = await servers(ssl_context=pki["server"])
    target = client.target(server.url(), ssl=pki["trusting"])
    for _ in range(3):
        assert (await client.post(target, b"{}")).status == 200
    assert server.connections == 1

    with pytest.raises(HttpClientError) as err:
        await client.post(client.target(server.url(), ssl=pki["rogue"]), b"{}")
    assert err.value.kind == "tls" and "certificate verify failed" in str(err.value)
    with pytest.raises(HttpClientError) as err:  # the system store does not know the private CA
        await client.post(client.target(server.url()), b"{}")
    assert err.value.kind == "tls"
    assert len(server.requests) == 3


async def test_mutual_tls(servers: ServerFactory, client: HttpClient, pki: dict[str, Any]) -> None:
    server = await servers(ssl_context=pki["mutual"])
    target = client.target(server.url(), ssl=pki["with_cert"])
    for _ in range(2):
        assert (await client.post(target, b"{}")).status == 200
    assert server.connections == 1

    # Without a client certificate the server refuses (TLS 1.3: after the client's handshake).
    with pytest.raises(HttpClientError) as err:
        await client.post(client.target(server.url(), ssl=pki["trusting"]), b"{}")
    assert err.value.kind in ("tls", "closed")  # the alert may arrive, or only the close
    assert "client certificate" in str(err.value) or "CERTIFICATE_REQUIRED" in str(err.value)
    assert len(server.requests) == 2


async def test_an_interim_100_continue_is_skipped(
    servers: ServerFactory, client: HttpClient
) -> None:
    server = await servers(script=lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    target = client.target(server.url())
    for _ in range(2):
        assert (await client.post(target, b"{}")).body == b"{}"
    assert server.connections == 1


async def test_connect_timeout() -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connect hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for s in fillers:
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
        c = HttpClient(max_per_origin=1, connect_timeout_s=0.2, timeout_s=5.0)
        try:
            with pytest.raises(HttpClientError) as err:
                await c.post(c.target(f"http://127.0.0.1:{port}/"), b"{}")
        finally:
            await c.close()
            for s in fillers:
                s.close()
    assert err.value.kind == "timeout" and "connect timeout after 0.2 s" in str(err.value)
