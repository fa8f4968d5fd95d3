"""A lean HTTP/1.1 client for small POSTs to many origins: the report pusher's callbacks.

Why not aiohttp: it cost ~10-15 % of the serving process's CPU for report pushes (issue 14);
a push is one small JSON body out and one small answer back, so everything aiohttp builds per
request (header multidicts, stream readers, tracing hooks, cookie jars) is waste here.

Strategy (theory of operation):

- **Targets are prepared once.** :meth:`HttpClient.target` parses a URL once and pre-builds
  the request head (request line, Host, Authorization from URL userinfo, Content-Type, the
  ``Content-Length:`` name), so a request is one bytes concatenation and one
  ``transport.write``.
- **One pool per origin** (scheme, host, port, TLS context *identity*: two customers with
  different CAs never share a connection). A pool holds idle keep-alive connections, most
  recently used first, and a semaphore of ``max_per_origin`` slots: a request takes a slot,
  reuses an idle connection or opens one, and gives both back. Connections therefore never
  outnumber slots, and a request beyond the bound waits for a slot.
- **One asyncio.Protocol per connection** feeding ``httptools.HttpResponseParser``; one request
  at a time on it (no pipelining). Bodies by Content-Length, chunked, or until close; at most
  ``max_body`` bytes are kept and a longer answer is cut and its connection closed (a hostile
  server cannot make us buffer or read without end). ``Connection: close`` and HTTP/1.0 without
  keep-alive close the connection after the answer; idle connections older than
  ``keepalive_s`` are not reused.
- **Stale keep-alive.** A server may close an idle connection at any time; its FIN is noticed
  (the connection leaves the pool), but it can race with our write. A request that fails on a
  *reused* connection before any byte of answer arrived is sent once more on a fresh
  connection (standard practice: browsers, urllib3, aiohttp do the same). A request on a fresh
  connection, or one that had started to be answered, is never repeated.
- **Timeouts**: ``connect_timeout_s`` bounds the TCP + TLS handshake; ``timeout_s`` bounds the
  whole request (waiting for a slot, connecting, sending, the answer). The answer's wait is
  bounded by a deadline on the connection, checked by one sweep timer per client (every tenth
  of ``timeout_s``, at most 0.25 s, while requests are in flight), not by an
  ``asyncio.timeout`` per request: that cost ~10 % of the pusher's CPU (``bench/report_push.py``
  under py-spy); the slot wait and the connect, which seldom happen on a busy pool, keep one.
- **One error class**, :class:`HttpClientError`, whose ``kind`` says what failed (``connect``,
  ``tls``, ``timeout``, ``closed``, ``protocol``, ``url``) and whose message is readable.

Usage::

    client = HttpClient(max_per_origin=4, connect_timeout_s=5, timeout_s=10)
    target = client.target("https://example.com/dr", ssl=ssl.create_default_context())
    response = await client.post(target, b'{"METHOD": "SMS_PUSH_REPORT"}')
    response.status, response.body
    await client.close()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl as _ssl
from dataclasses import dataclass
from typing import Final, Literal, cast
from urllib.parse import quote, unquote, urlsplit

import httptools

from cloudsms.exceptions import CloudSMSError
from cloudsms.transport.connection import set_nodelay
from cloudsms.transport.write_batch import WriteBatch

ErrorKind = Literal["connect", "tls", "timeout", "closed", "protocol", "url"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Characters left as they are in a request target (RFC 3986 §3.3 pchar, plus "/", "?" and "%"
#: so an already-encoded path is not encoded twice).
_PATH_SAFE: Final = "/?%:@!$&'()*+,;=~-._"


class HttpClientError(CloudSMSError):
    """The request got no usable HTTP response."""

    def __init__(self, message: str, *, kind: ErrorKind, response_started: bool = False) -> None:
        super().__init__(message)
        #: What failed: connect, tls, timeout, closed, protocol or url.
        self.kind: ErrorKind = kind
        #: Some of the answer had arrived when it failed (a retry could not be transparent).
        self.response_started = response_started


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer: its status and its body, cut at the client's ``max_body``."""

    status: int
    body: bytes


class _Pool:
    """The connections to one origin, and the slots that bound requests in flight to it."""

    __slots__ = ("idle", "slots")

    def __init__(self, limit: int) -> None:
        #: Idle keep-alive connections, most recently used last (taken from the end).
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """A prepared URL: where to connect and the request head up to ``Content-Length: ``."""

    host: str
    port: int
    ssl: _ssl.SSLContext | None
    head: bytes
    pool: _Pool

    @property
    def origin(self) -> str:
        """``host:port`` for messages (``[::1]:8080`` for IPv6)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time; its answer resolves ``_waiter``."""

    def __init__(self, client: HttpClient, pool: _Pool, tls: bool, origin: str) -> None:
        self._client = client
        self._pool = pool
        self._tls = tls
        self.origin = origin
        #: loop.time() by which the answer must be complete (the client's sweep checks it).
        self.deadline = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Answered at least once: a failure before any answer byte may be a stale keep-alive.
        self.reused = False
        #: loop.time() when last put back in the pool.
        self.idle_since = 0.0
        #: The answer may be followed by another request on this connection.
        self.reusable = False
        self._lost: asyncio.Future[None] = client.loop.create_future()
        self._waiter: asyncio.Future[Response] | None = None
        self._started = False
        self._headers_done = False
        self._framed = False  # Content-Length or chunked (else the body runs until close)
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0

    # ------------------------------------------------------------------------ the exchange

    def request(self, data: bytes, deadline: float) -> asyncio.Future[Response]:
        """Send one request (already encoded); the future resolves with its answer, or fails
        with a timeout once ``deadline`` (loop time) has passed."""
        assert self.transport is not None and self._waiter is None
        self._waiter = waiter = self._client.loop.create_future()
        self._started = self._headers_done = self._framed = False
        self._chunks, self._size, self.reusable = [], 0, False
        self.deadline = deadline
        self._client.watch(self)
        self._client.writes.write(self.transport, data)  # with this iteration's other requests
        return waiter

    def done(self) -> None:
        """The caller has the answer (or gave up): back to the pool, or closed."""
        self._waiter = None
        self._client.busy.discard(self)
        if self.reusable and not self.closed:
            self.reused = True
            self.idle_since = self._client.loop.time()
            self._pool.idle.append(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def _resolve(self, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.reusable = keep_alive
            chunks = self._chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            waiter.set_result(Response(self._status, body))

    def fail(self, exc: HttpClientError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)
        self._client.connections.add(self)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for (an idle connection, or after the answer): the stream
            # can no longer be trusted to line up with our requests.
            self.abort()
            return
        self._started = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(self._error("upgrade to another protocol is not supported", "protocol"))
        except httptools.HttpParserError as exc:
            self.fail(self._error(f"bad HTTP response: {exc}", "protocol"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._client.connections.discard(self)
        with contextlib.suppress(ValueError):
            self._pool.idle.remove(self)  # closed by the server while idle: noticed here
        if not self._lost.done():
            self._lost.set_result(None)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if exc is None and self._headers_done and not self._framed:
            self._resolve(False)  # a body delimited by the end of the connection (RFC 9112 §6.3)
        elif isinstance(exc, _ssl.SSLError):
            waiter.set_exception(self._error(f"TLS failure: {exc}", "tls"))
        else:
            why = f": {exc}" if exc else ""
            what = "before the answer" if not self._started else "in the middle of the answer"
            if self._tls and not self._started and not self.reused:
                # TLS 1.3: a server that refuses our client certificate says so only after our
                # side of the handshake is done, and the alert seldom reaches the protocol.
                why += " (TLS: does the server require a client certificate we did not send?)"
            waiter.set_exception(self._error(f"connection closed {what}{why}", "closed"))

    # ----------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a second answer to one request: out of step
            self.abort()
        self._chunks, self._size = [], 0

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"content-length" or (
            lower == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        room = self._client.max_body - self._size
        if room <= 0:
            return
        if len(body) >= room:
            self._chunks.append(body[:room])
            self._size += room
            self._resolve(False)  # cut: the rest is not read, so the connection is not reused
            self.abort()
            return
        self._chunks.append(body)
        self._size += len(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers_done = self._framed = False
            return
        self._resolve(self._parser.should_keep_alive())

    def _error(self, message: str, kind: ErrorKind) -> HttpClientError:
        return HttpClientError(message, kind=kind, response_started=self._started)


class HttpClient:
    """Keep-alive connection pools per origin, and POST over them (see the module docstring)."""

    def __init__(
        self,
        *,
        max_per_origin: int,
        connect_timeout_s: float,
        timeout_s: float,
        keepalive_s: float = 30.0,
        max_body: int = 65_536,
        local_address: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        if max_per_origin < 1 or max_body < 1:
            raise ValueError("max_per_origin and max_body must be ≥ 1")
        self.loop = asyncio.get_running_loop()
        #: Requests leave with the others of the same loop iteration (see ``write_batch``).
        self.writes = WriteBatch(self.loop)
        self.max_per_origin = max_per_origin
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self.max_body = max_body
        self.local_address = local_address
        self.content_type = content_type
        #: Every open connection (idle or busy), for close().
        self.connections: set[_Connection] = set()
        #: Connections waiting for an answer, whose deadline the sweep checks.
        self.busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._pools: dict[tuple[str, str, int, _ssl.SSLContext | None], _Pool] = {}
        self._default_ssl: _ssl.SSLContext | None = None

    def target(self, url: str, *, ssl: _ssl.SSLContext | None = None) -> Target:
        """Prepare ``url`` for :meth:`post`; ``ssl`` is the context for an https URL.

        Raises HttpClientError (kind ``url``) for a URL that is not http(s) with a host.
        """
        try:
            parts = urlsplit(url.strip())
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError as exc:
            raise HttpClientError(f"invalid URL {url!r}: {exc}", kind="url") from exc
        if scheme not in _DEFAULT_PORTS or not host:
            raise HttpClientError(f"invalid URL {url!r}: not http(s) with a host", kind="url")
        if scheme == "http":
            ssl = None
        elif ssl is None:  # one shared context, so such targets share their origin's pool
            if self._default_ssl is None:
                self._default_ssl = _ssl.create_default_context()
            ssl = self._default_ssl
        try:
            ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError as exc:
            raise HttpClientError(f"invalid host in URL {url!r}", kind="url") from exc
        port = port or _DEFAULT_PORTS[scheme]
        host_header = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
        if port != _DEFAULT_PORTS[scheme]:
            host_header += f":{port}"
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_PATH_SAFE)
        auth = ""
        if parts.username is not None:  # user:password@ in the URL is Basic auth (RFC 7617)
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = f"Authorization: Basic {base64.b64encode(pair.encode()).decode()}\r\n"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n{auth}"
            f"Content-Type: {self.content_type}\r\nContent-Length: "
        ).encode("latin-1")
        key = (scheme, ascii_host, port, ssl)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self.max_per_origin)
        return Target(ascii_host, port, ssl, head, pool)

    async def post(self, target: Target, body: bytes) -> Response:
        """POST ``body`` to ``target``; the answer, or HttpClientError."""
        data = b"%b%d\r\n\r\n%b" % (target.head, len(body), body)
        pool = target.pool
        deadline = self.loop.time() + self.timeout_s
        if pool.slots.locked():  # every slot busy: wait for one, within the deadline
            try:
                async with asyncio.timeout_at(deadline):
                    await pool.slots.acquire()
            except TimeoutError:
                raise self._timed_out(target.origin) from None
        else:
            await pool.slots.acquire()  # returns at once
        try:
            conn = self._idle(pool)
            if conn is None:
                return await self._exchange(await self._connect(target, deadline), data, deadline)
            try:
                return await self._exchange(conn, data, deadline)
            except HttpClientError as exc:
                if exc.kind not in ("closed", "tls") or exc.response_started:
                    raise
            # A stale keep-alive connection: once more, on a fresh one.
            return await self._exchange(await self._connect(target, deadline), data, deadline)
        finally:
            pool.slots.release()

    def watch(self, conn: _Connection) -> None:
        """``conn`` sent a request: its deadline is checked until it is done."""
        self.busy.add(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._sweep_s, self._sweep)

    @property
    def _sweep_s(self) -> float:
        return min(0.25, max(0.01, self.timeout_s / 10))

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.loop.time()
        for conn in [c for c in self.busy if c.deadline <= now]:
            self.busy.discard(conn)
            conn.fail(self._timed_out(conn.origin))
        if self.busy:
            self._sweeper = self.loop.call_later(self._sweep_s, self._sweep)

    def _timed_out(self, origin: str) -> HttpClientError:
        return HttpClientError(f"timeout after {self.timeout_s:g} s ({origin})", kind="timeout")

    async def close(self) -> None:
        """Close every connection, idle or busy; the client can still be used afterwards."""
        conns = list(self.connections)
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        for pool in self._pools.values():
            pool.idle.clear()
        if conns:
            _, slow = await asyncio.wait([c._lost for c in conns], timeout=1.0)
            if slow:
                for conn in conns:
                    conn.abort()
        if self._sweeper is not None and not self.busy:
            self._sweeper.cancel()
            self._sweeper = None

    # ----------------------------------------------------------------------------- helpers

    def _idle(self, pool: _Pool) -> _Connection | None:
        idle = pool.idle
        if not idle:
            return None
        oldest = self.loop.time() - self.keepalive_s
        while idle:
            conn = idle.pop()
            transport = conn.transport
            alive = transport is not None and not conn.closed and not transport.is_closing()
            if alive and conn.idle_since > oldest:
                return conn
            conn.abort()
        return None

    async def _exchange(self, conn: _Connection, data: bytes, deadline: float) -> Response:
        try:
            return await conn.request(data, deadline)
        finally:
            conn.done()  # back to the pool if the answer allows it; otherwise closed

    async def _connect(self, target: Target, deadline: float) -> _Connection:
        where = target.origin
        connect_by = self.loop.time() + self.connect_timeout_s
        try:
            async with asyncio.timeout_at(min(deadline, connect_by)):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self, target.pool, target.ssl is not None, where),
                    target.host,
                    target.port,
                    ssl=target.ssl,
                    server_hostname=target.host if target.ssl is not None else None,
                    local_addr=(self.local_address, 0) if self.local_address else None,
                )
        except TimeoutError:
            if deadline < connect_by:  # the whole request's time ran out first
                raise self._timed_out(where) from None
            raise HttpClientError(
                f"connect timeout after {self.connect_timeout_s:g} s ({where})", kind="timeout"
            ) from None
        except _ssl.SSLError as exc:
            raise HttpClientError(f"TLS failure with {where}: {exc}", kind="tls") from exc
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise HttpClientError(f"cannot connect to {where}: {reason}", kind="connect") from exc
        return conn
