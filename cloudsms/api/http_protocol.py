"""The UIP listener's HTTP/1.1 server: an ``asyncio.Protocol`` over ``httptools``, no framework.

Strategy: the listener answers small JSON requests, so a connection needs nothing between the
parser and :meth:`UipService.handle` but a few fields. ``httptools.HttpRequestParser`` calls
back with the URL, the headers that matter (``X-Forwarded-For``, ``Content-Length``,
``Expect``) and the body; at the end of the headers the route is decided
(``cloudsms.api.routes``): a UIP POST has its body collected under ``max_body_bytes`` and handed
to the service, anything else is answered at once. No ASGI scope, request or response object
exists; a request is one slotted :class:`_Request` and its answer one ``bytes``
(``cloudsms.api.http_wire``).

Rules of one connection:

* Requests are answered in the order they arrived, one at a time (HTTP/1.1 pipelining, RFC 9112
  §9.3.2). Requests parsed ahead wait in a queue; over ``max_pipelined`` of them, reading pauses
  until the queue drains, and it pauses too while the transport's write buffer is full.
* HTTP/1.1 connections stay open unless the client sends ``Connection: close``; HTTP/1.0 ones
  close after their answer (as uvicorn did). Idle time between requests: ``keep_alive_s``.
* ``Expect: 100-continue`` gets ``100 Continue`` when the request's turn comes and its body is
  wanted (not when its Content-Length is already over the limit: it gets the 413).
* The client address is the peer's, or what ``trusted_proxies`` say (``cloudsms.api.forwarded``);
  with TLS, the SHA-256 of the client certificate is read once per connection and goes with
  every request of it (key binding).

Strategy for slow and hostile clients (issue 6 point 5): one timer per connection.

* From the connection (or a keep-alive request's first byte) to the end of the headers:
  ``header_timeout_s``. Then from the end of the headers to the end of the body:
  ``body_timeout_s``. Both are deadlines, not idle timers, so trickling one byte a second
  (slowloris) does not extend them. On expiry the client gets HTTP 408 (if it sent anything)
  and the connection is closed.
* Request line + headers over ``max_header_bytes``: HTTP 431, closed (httptools has no cap, so a
  client could otherwise stream headers into memory until the deadline). The limit must hold
  however the bytes are split across reads, so two counts are kept, each exact where the other
  is blind: the bytes received while the headers are incomplete (a header block still
  streaming in, whose unfinished line httptools buffers without reporting it), and the size of
  the request line and header lines the parser has reported for the current request (a block
  that completed within one read, alone or pipelined behind another request). Either one over
  the limit refuses the request before the service sees it.
* A body over ``max_body_bytes``, by its Content-Length or as a chunked body grows: HTTP 413,
  closed, before the rest is read.
* Over ``max_connections`` open connections: HTTP 503 with a Busy ANSWER, closed at once, so
  slow clients cannot hold every file descriptor and new ones are told to retry.
* A request httptools cannot parse: HTTP 400 with an Invalid_context ANSWER. When the unparsable
  bytes follow a request's body on the same connection, that request's Content-Length was
  shorter than what the client sent (a client counting characters instead of UTF-8 bytes): the
  request is answered first (its own ANSWER says its JSON was cut short), then the 400 says so
  too, and the connection closes.

A 400 or 408 due while earlier requests of the connection are still being answered waits for
them, so answers stay in order; a 431 is sent at once. A connection is closed by shutting its
write side first and dropping what the client still sends (a lingering close), so that the
kernel does not reset it and destroy the last answer. Every refusal is a security event
(``cloudsms.api.guard``). Refused TLS handshakes never reach this protocol: see
``cloudsms.api.tls_alerts``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from typing import cast

import httptools

from cloudsms.api import guard, http_wire
from cloudsms.api.answers import answer
from cloudsms.api.forwarded import TrustedProxies
from cloudsms.api.guard import EVENTS
from cloudsms.api.http_limits import AFTER_BODY, DETAILS, HttpLimits, refusal, too_large
from cloudsms.api.routes import UipRoutes, request_path
from cloudsms.api.uip import Caller
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.packet import SEND_METHOD
from cloudsms.transport.write_batch import WriteBatch

log = logging.getLogger("cloudsms.api")

#: How long a closing connection reads and drops what the client still sends (``_close``).
LINGER_S = 2.0
#: The security event's message for an unparsable request (uvicorn's words, which logs match).
MALFORMED = "Invalid HTTP request received."


class HttpListener:
    """What the connections of one listener share; called, it makes a connection's protocol::

    server = await loop.create_server(HttpListener(routes, limits, proxies), host, port)
    """

    def __init__(self, routes: UipRoutes, limits: HttpLimits, proxies: TrustedProxies) -> None:
        self.routes = routes
        self.limits = limits
        self.proxies = proxies
        self._writes: WriteBatch | None = None
        self.connections: set[HttpProtocol] = set()
        #: Answers under way (a graceful shutdown waits for them).
        self.tasks: set[asyncio.Task[None]] = set()

    def write_batch(self, loop: asyncio.AbstractEventLoop) -> WriteBatch:
        """The answers of all this listener's connections, written together per iteration."""
        if self._writes is None:
            self._writes = WriteBatch(loop)
        return self._writes

    def __call__(self) -> HttpProtocol:
        return HttpProtocol(self)

    def shutdown(self) -> None:
        """Close idle connections; busy ones close after the answer under way."""
        for connection in list(self.connections):
            connection.shutdown()

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()


class _Request:
    """One parsed request waiting for its answer."""

    __slots__ = (
        "caller",
        "chunks",
        "complete",
        "expect_continue",
        "keep_alive",
        "method",
        "path",
        "size",
        "takes_body",
        "too_big",
    )  # fmt: skip

    def __init__(self, method: bytes, path: bytes, keep_alive: bool, caller: Caller) -> None:
        self.method = method
        self.path = path
        self.keep_alive = keep_alive
        self.caller = caller
        self.takes_body = False
        self.expect_continue = False
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.too_big = False


class HttpProtocol(asyncio.Protocol):
    """One connection of the UIP listener (see the module docstring)."""

    transport: asyncio.Transport

    def __init__(self, listener: HttpListener) -> None:
        self.listener = listener
        self.limits = listener.limits
        self.routes = listener.routes
        self.loop = asyncio.get_running_loop()
        #: Answers leave with the others of the same loop iteration (see ``transport.write_batch``).
        self._writes = listener.write_batch(self.loop)
        self.parser = httptools.HttpRequestParser(self)
        self.peer: str | None = None
        self.caller = Caller(None)
        self._queue: deque[_Request] = deque()
        #: The request whose headers or body are being parsed, once its headers are complete.
        self._incoming: _Request | None = None
        self._task: asyncio.Task[None] | None = None
        #: The one timer of the connection, set for ``_timer_at`` (loop time); it serves the
        #: current deadline (see ``_arm``), or closes a lingering connection.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        #: The current deadline (loop time), its event (None: the keep-alive idle time, not a
        #: request's deadline) and its length.
        self._deadline: float | None = None
        self._deadline_event: str | None = None
        self._deadline_s = 0.0
        #: True from a request's first byte (or the connection) until its headers are complete.
        self._in_headers = False
        #: Bytes received while the current request's headers were incomplete.
        self._header_bytes = 0
        #: Request line + header lines of the current request as the parser reported them.
        self._parsed_header_bytes = 0
        #: Bytes of the current request seen so far (0: the client has sent nothing yet).
        self._request_bytes = 0
        #: True from the end of a request's body until the next request's headers are complete.
        self._after_body = False
        #: Nothing more is parsed (a refusal is due or sent, or the parser gave up).
        self._spent = False
        #: The connection is closing: nothing more is written.
        self._done = False
        #: Close after the answer under way (graceful shutdown, an upgrade request).
        self._draining = False
        #: (status, RESULT_DETAIL) of a refusal held back until earlier requests are answered.
        self._due: tuple[int, str] | None = None
        self._reading_paused = False
        self._write_paused = False
        # The current request's headers, as far as they matter.
        self._url = b""
        self._forwarded: list[bytes] | None = None
        self._content_length: bytes | None = None
        self._expect = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else None
        cert = None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                cert = hashlib.sha256(der).hexdigest()
        self.caller = Caller(self.peer, cert)
        connections = self.listener.connections
        connections.add(self)
        cap = self.limits.max_connections
        if cap and len(connections) > cap:
            EVENTS.emit(
                guard.CONNECTION_CAP,
                "connection refused: max_connections reached",
                client_ip=self.peer,
                limit=cap,
            )
            self._refuse(503, ResultCode.BUSY)
            return
        self._in_headers = True
        self._arm(self.limits.header_timeout_s, guard.HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        # An answer under way is not cancelled: its packet may be committing (durable accept).
        self._spent = self._done = True
        self._cancel_timer()
        self._queue.clear()
        self.listener.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        if self._spent:
            return
        self._request_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc, httptools.HttpParserCallbackError):
                log.exception("HTTP parser callback failed", extra={"client_ip": self.peer})
            self._malformed()
            return
        if self._in_headers and not self._spent:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._headers_too_large()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._flow()

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._spent:
            return
        self._in_headers = True
        self._header_bytes = self._parsed_header_bytes = 0
        self._url = b""
        self._forwarded = self._content_length = None
        self._expect = False
        # No deadline, or the keep-alive idle time: a new request, whose deadline starts now.
        if self._deadline is None or self._deadline_event is None:
            self._arm(self.limits.header_timeout_s, guard.HEADER_TIMEOUT)

    def on_url(self, url: bytes) -> None:
        if self._within_header_limit(len(url)):
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Trailers of a chunked body are reported here too; only the header block counts.
        if not self._in_headers or not self._within_header_limit(len(name) + len(value) + 4):
            return
        size = len(name)
        if size == 15 and name.lower() == b"x-forwarded-for":
            if self._forwarded is None:
                self._forwarded = []
            self._forwarded.append(value)
        elif size == 14 and name.lower() == b"content-length":
            self._content_length = value
        elif size == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._expect = True

    def on_headers_complete(self) -> None:
        parser = self.parser
        method: bytes = parser.get_method()
        # "METHOD " + " HTTP/1.1\r\n" + the blank line ending the block.
        if not self._within_header_limit(len(method) + 14):
            return
        self._in_headers = False
        self._after_body = False
        self._arm(self.limits.body_timeout_s, guard.BODY_TIMEOUT)
        try:
            path = request_path(self._url)
        except httptools.HttpParserInvalidURLError:
            path = b""  # answered 404
        keep_alive = parser.should_keep_alive() and parser.get_http_version() != "1.0"
        request = _Request(method, path, keep_alive, self._caller())
        if self.routes.takes_body(method, path):
            request.takes_body = True
            request.expect_continue = self._expect
            if self._content_length is not None:
                try:
                    request.too_big = int(self._content_length) > self.limits.max_body_bytes
                except ValueError:
                    request.too_big = True
        self._incoming = request
        self._queue.append(request)
        self._advance()

    def on_body(self, body: bytes) -> None:
        request = self._incoming
        if request is None or not request.takes_body or request.too_big or self._spent:
            return
        request.size += len(body)
        if request.size > self.limits.max_body_bytes:
            request.too_big = True
            request.chunks.clear()
            self._advance()
        else:
            request.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._spent:
            return
        self._disarm()
        self._request_bytes = 0
        self._after_body = True
        request = self._incoming
        self._incoming = None
        if request is not None:
            request.complete = True
        self._advance()

    # -- answering -----------------------------------------------------------------------------

    def _advance(self) -> None:
        """Answer the requests at the head of the queue that can be answered now, in order."""
        queue = self._queue
        while self._task is None and queue and not self._done:
            request = queue[0]
            if not request.takes_body:
                queue.popleft()
                status, body, content_type, extra = self.routes.answer(request.method, request.path)
                self._send(request, status, body, content_type, extra)
                continue
            if request.too_big:
                EVENTS.emit(
                    guard.OVERSIZED_BODY,
                    "request body over max_body_bytes",
                    client_ip=request.caller.ip,
                    limit=self.limits.max_body_bytes,
                )
                self._write_now(too_large(self.limits.max_body_bytes))
                self._close()
                return
            if not request.complete:
                if request.expect_continue:
                    request.expect_continue = False
                    self._write_now(http_wire.CONTINUE)
                break
            queue.popleft()
            chunks = request.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            task = self.loop.create_task(self._answer(request, body))
            self._task = task
            self.listener.tasks.add(task)
            task.add_done_callback(self.listener.tasks.discard)
        if self._task is None and not queue and not self._done:
            if self._due is not None:
                status, detail = self._due
                self._refuse(status, ResultCode.INVALID_CONTEXT, detail)
                return
            if self._incoming is None and not self._in_headers:
                self._arm(self.limits.keep_alive_s, None)
        self._flow()

    async def _answer(self, request: _Request, body: bytes) -> None:
        try:
            status, payload = await self.routes.handle(body, request.caller)
        except Exception:  # UipService.handle never raises; a bug must not hang the client
            log.exception("unexpected failure answering a packet", extra={"client_ip": self.peer})
            status, payload = 500, answer(SEND_METHOD, 0, ResultCode.UNKNOWN_ERROR)
        finally:
            self._task = None
        if self._done:
            return  # the client left, or the server closed the connection: no one to answer
        self._send(request, status, payload, http_wire.JSON_UTF8, b"")
        self._advance()

    def _send(
        self, request: _Request, status: int, body: bytes, content_type: bytes, extra: bytes
    ) -> None:
        close = not request.keep_alive or self._draining
        data = http_wire.response(
            status, body, content_type, close=close, extra=extra, head=request.method == b"HEAD"
        )
        if close:
            self._write_now(data)  # queued before the close below
            self._close()
        else:
            self._writes.write(self.transport, data)  # with this iteration's other answers

    def _write_now(self, data: bytes) -> None:
        """Write ``data`` at once, after the answers the batch holds (this connection's too)."""
        self._writes.flush()
        self.transport.write(data)

    def _caller(self) -> Caller:
        """The caller of the current request: the peer, unless a trusted proxy forwarded it."""
        forwarded = self._forwarded
        if forwarded is None or not self.listener.proxies:
            return self.caller
        address = self.listener.proxies.client_address(self.peer, forwarded)
        if address == self.peer:
            return self.caller
        return Caller(address, self.caller.cert_sha256)

    # -- refusals ------------------------------------------------------------------------------

    def _within_header_limit(self, size: int) -> bool:
        """Count ``size`` parsed header bytes; False (and the request refused) once over."""
        if self._spent:
            return False
        self._parsed_header_bytes += size
        if self._parsed_header_bytes > self.limits.max_header_bytes:
            self._headers_too_large()
            return False
        return True

    def _headers_too_large(self) -> None:
        EVENTS.emit(
            guard.HEADERS_TOO_LARGE,
            "request line and headers over max_header_bytes",
            client_ip=self.peer,
            limit=self.limits.max_header_bytes,
        )
        # At once, even before answers under way (their clients get none): a header flood
        # is not worth the wait, and its bytes are not read meanwhile.
        self._refuse(431, ResultCode.INVALID_CONTEXT)

    def _malformed(self) -> None:
        """An unparsable request: a JSON 400 after the requests before it, and an event."""
        EVENTS.emit(guard.MALFORMED_HTTP, MALFORMED, client_ip=self.peer)
        self._refuse_in_turn(400, AFTER_BODY if self._after_body else DETAILS[400])

    def _upgrade(self) -> None:
        """An upgrade (or CONNECT) request: nothing after it is parsed; close after answering."""
        self._spent = self._draining = True
        self._drop_incomplete()
        if self._task is None and not self._queue:
            self._close()
        else:
            self._advance()

    def _refuse_in_turn(self, status: int, detail: str) -> None:
        """Refuse the request being received, once the requests before it are answered."""
        self._spent = True
        self._in_headers = False
        self._disarm()
        self._drop_incomplete()
        if self._task is None and not self._queue:
            self._refuse(status, ResultCode.INVALID_CONTEXT, detail)
        else:
            self._due = (status, detail)
            self._flow()

    def _drop_incomplete(self) -> None:
        """Forget the request being received (it will never complete)."""
        request = self._incoming
        self._incoming = None
        if request is not None and self._queue and self._queue[-1] is request:
            self._queue.pop()

    def _refuse(self, status: int, code: ResultCode, detail: str | None = None) -> None:
        """Write a complete error response with a UIP ANSWER and close the connection."""
        self._write_now(refusal(status, code, detail))
        self._close()

    # -- timers, flow, closing -----------------------------------------------------------------

    def _arm(self, delay: float, event: str | None) -> None:
        """Set the connection's deadline: a request's (``event``) or, None, the idle time.

        Why not a timer per deadline: a request sets three (headers, body, idle after its
        answer), and scheduling and cancelling them cost ~4 % of the API process at saturation.
        The one timer stays set for the earliest deadline it was asked for; when it fires at a
        deadline that has moved later meanwhile, it waits the rest (``_on_timer``). A later
        deadline costs an assignment, an earlier one a new timer.
        """
        if delay <= 0:
            self._deadline = None
            return
        deadline = self.loop.time() + delay
        self._deadline, self._deadline_event, self._deadline_s = deadline, event, delay
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _disarm(self) -> None:
        """No deadline; a timer still set finds none when it fires, and stops."""
        self._deadline = None

    def _cancel_timer(self) -> None:
        """No deadline and no timer: the connection is done."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._done:
            return
        if self.loop.time() < deadline:  # moved later since the timer was set: wait the rest
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        self._deadline = None
        self._expired(self._deadline_event, self._deadline_s)

    def _expired(self, event: str | None, delay: float) -> None:
        if self._done:
            return
        if event is None:  # keep-alive idle time is over
            self._close()
            return
        EVENTS.emit(
            event,
            "request not complete in time, connection closed",
            client_ip=self.peer,
            timeout_s=delay,
            received=self._request_bytes,
        )
        incoming = self._incoming
        answered = incoming is not None and incoming not in self._queue
        if self._request_bytes and not answered:
            self._refuse_in_turn(408, DETAILS[408])
        else:  # nothing sent (an idle connection), or its answer already sent
            self._close()

    def _flow(self) -> None:
        """Read only while answers keep up: pause on a full write buffer or a long queue."""
        pause = self._write_paused or self._spent or len(self._queue) > self.limits.max_pipelined
        if pause != self._reading_paused and not self._done:
            self._reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _close(self, *, linger: bool = True) -> None:
        """Close after what was written: a lingering close (RFC 9112 §9.6).

        Closing a socket with unread bytes in it makes the kernel send a reset, which can
        destroy the answer just written (a 413 or 431 while the client is still sending). So
        the write side is shut first and what the client still sends is read and dropped until
        it closes its side, for at most ``LINGER_S``.
        """
        self._spent = self._done = True
        self._cancel_timer()
        self._queue.clear()
        transport = self.transport
        if not linger or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        self._timer = self.loop.call_later(LINGER_S, transport.close)

    def eof_received(self) -> bool:
        """The client closed its side: the transport closes (after what is being written)."""
        return False

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the answer under way."""
        self._draining = True
        if self._task is None and not self._done:
            self._close(linger=False)  # nothing was just written that a reset could destroy

    def abort(self) -> None:
        """The end of a graceful shutdown that ran out of time."""
        self._spent = self._done = True
        self._cancel_timer()
        self.transport.abort()
