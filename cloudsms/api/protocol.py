"""The UIP listener's HTTP protocol: uvicorn's httptools protocol, client certificates, limits.

uvicorn does not put the peer certificate in the ASGI scope, so ``TlsHttpToolsProtocol`` reads it
from the TLS object once per connection and adds ``scope["extensions"]["tls"]
["client_cert_sha256"]`` to every request of that connection; the UIP endpoint uses it to bind a
key to a certificate.

Strategy for slow and hostile clients (issue 6 point 5; uvicorn itself only has a keep-alive
timeout): the same protocol class keeps one timer per connection.

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
  the limit refuses the request before the app sees it.
* Over ``max_connections`` open connections: HTTP 503 with a Busy ANSWER, closed at once, so
  slow clients cannot hold every file descriptor and new ones are told to retry.
* A request httptools cannot parse: HTTP 400 with an Invalid_context ANSWER (not uvicorn's text).
  When the unparsable bytes follow a request's body on the same connection, that request's
  Content-Length was shorter than what the client sent (a client counting characters instead of
  UTF-8 bytes): the request is answered first (its own ANSWER says its JSON was cut short), then
  the 400 says so too, and the connection closes.

Every such refusal is a security event (``cloudsms.api.guard``). A TLS handshake refused by the
server (unknown CA, expired or missing client certificate, old protocol version) never reaches
the protocol; it is seen through the SSL context's message callback instead (``tls_alert_logger``,
which ``cloudsms.runtime.serve`` installs), which logs the alert the server sent (without the
peer address: OpenSSL does not know it there).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cloudsms.api import guard
from cloudsms.api.answers import answer
from cloudsms.api.guard import EVENTS
from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.packet import SEND_METHOD

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
#: RESULT_DETAIL of each refusal at the HTTP layer.
_DETAILS = {
    400: "not an HTTP/1.1 request",
    408: "the request did not arrive in time",
    431: "the request line and headers are too large",
    503: "too many open connections: try again shortly",
}
#: RESULT_DETAIL of a 400 for bytes that follow a request's body.
AFTER_BODY = (
    "bytes after the end of the previous request's body are not an HTTP request: its"
    " Content-Length was shorter than its body (count UTF-8 bytes, not characters)"
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Connection-level limits of one listener (see the module docstring)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 32_768
    #: 0: no cap.
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_header_bytes=settings.max_header_bytes,
            max_connections=settings.max_connections,
        )


#: uvicorn's line for a request httptools cannot parse; ``send_400_response`` logs it instead.
_UVICORN_PARSE_ERROR = "Invalid HTTP request received."


class _ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """uvicorn's per-connection logger for one connection: every line names the client.

    A parse error is not logged here: ``send_400_response`` reports it as a security event
    (throttled, with the client), and uvicorn's own line would only repeat it.
    """

    @property
    def level(self) -> int:  # uvicorn reads logger.level to skip its trace lines
        level: int = self.logger.level
        return level

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if msg != _UVICORN_PARSE_ERROR:
            super().warning(msg, *args, **kwargs)


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol + client certificate in the scope + the limits above."""

    #: Set per listener by :func:`protocol_class`.
    limits: ClassVar[HttpLimits] = HttpLimits()
    _cert_sha256: str | None = None
    _timer: asyncio.TimerHandle | None = None
    #: True from a request's first byte (or the connection) until its headers are complete.
    _in_headers = False
    #: Bytes received while the current request's headers were incomplete.
    _header_bytes = 0
    #: Request line + header lines of the current request as the parser reported them.
    _parsed_header_bytes = 0
    #: An answer refused the connection: the rest of what was read is not parsed into requests.
    _refused = False
    #: Bytes of the current request seen so far (0: the client has sent nothing yet).
    _request_bytes = 0
    #: True from the end of a request's body until the next request's headers are complete.
    _after_body = False
    #: RESULT_DETAIL of a 400 held back until the request before it is answered.
    _refusal_due: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.logger = _ConnectionLog(self.logger, {"client_ip": self._client_ip()})  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                self._cert_sha256 = hashlib.sha256(der).hexdigest()
        cap = self.limits.max_connections
        if cap and len(self.connections) > cap:
            EVENTS.emit(
                guard.CONNECTION_CAP,
                "connection refused: max_connections reached",
                client_ip=self._client_ip(),
                limit=cap,
            )
            self._refuse(503, ResultCode.BUSY)
            return
        self._in_headers = True
        self._arm(self.limits.header_timeout_s, guard.HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._request_bytes += len(data)
        super().data_received(data)
        if self._in_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._headers_too_large()

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        scope: Any = self.scope
        scope["extensions"] = {"tls": {"client_cert_sha256": self._cert_sha256}}
        self._in_headers = True
        self._header_bytes = self._parsed_header_bytes = 0
        if self._timer is None:  # a keep-alive request: its deadline starts at its first byte
            self._arm(self.limits.header_timeout_s, guard.HEADER_TIMEOUT)

    def on_url(self, url: bytes) -> None:
        if self._within_header_limit(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Trailers of a chunked body are reported here too; only the header block counts.
        if not self._in_headers or self._within_header_limit(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # "METHOD " + " HTTP/1.1\r\n" + the blank line ending the block.
        if not self._within_header_limit(len(self.parser.get_method()) + 14):
            return
        self._in_headers = False
        self._after_body = False
        self._arm(self.limits.body_timeout_s, guard.BODY_TIMEOUT)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._request_bytes = 0
        self._after_body = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """An unparsable request: a JSON ANSWER instead of uvicorn's text, and an event.

        If the request before it is still being answered, its answer goes first: it tells the
        client what was wrong with that request (a body cut short by its Content-Length).
        """
        EVENTS.emit(guard.MALFORMED_HTTP, msg, client_ip=self._client_ip())
        detail = AFTER_BODY if self._after_body else _DETAILS[400]
        if self.cycle is not None and not self.cycle.response_complete:
            self._refusal_due = detail
            self.flow.pause_reading()  # the parser is spent: read nothing more
            return
        self._refuse(400, ResultCode.INVALID_CONTEXT, detail)

    def on_response_complete(self) -> None:
        due = self._refusal_due
        if due is not None and not self.pipeline and not self.transport.is_closing():
            self._refusal_due = None
            self._refuse(400, ResultCode.INVALID_CONTEXT, due)
        super().on_response_complete()

    # -- helpers ---------------------------------------------------------------------------------

    def _within_header_limit(self, size: int) -> bool:
        """Count ``size`` parsed header bytes; False (and the request refused) once over."""
        if self._refused:
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
            client_ip=self._client_ip(),
            limit=self.limits.max_header_bytes,
        )
        self._refuse(431, ResultCode.INVALID_CONTEXT)

    def _client_ip(self) -> str | None:
        return self.client[0] if self.client else None

    def _arm(self, delay: float, event: str) -> None:
        self._disarm()
        if delay > 0:
            self._timer = self.loop.call_later(delay, self._expired, event, delay)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, event: str, delay: float) -> None:
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        EVENTS.emit(
            event,
            "request not complete in time, connection closed",
            client_ip=self._client_ip(),
            timeout_s=delay,
            received=self._request_bytes,
        )
        # While in the headers, self.cycle is still the previous request's (keep-alive).
        answering = not self._in_headers and self.cycle is not None and self.cycle.response_started
        if self._request_bytes and not answering:
            self._refuse(408, ResultCode.INVALID_CONTEXT)
        else:  # nothing sent (an idle connection), or an answer already under way
            self.transport.close()

    def _refuse(self, status: int, code: ResultCode, detail: str | None = None) -> None:
        """Write a complete error response with a UIP ANSWER and close the connection."""
        self._disarm()
        self._refused = True
        self._in_headers = False
        body = answer(SEND_METHOD, 0, code, reason=detail or _DETAILS[status])
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        self.transport.write(
            head
            + b"content-type: application/json; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        if self.cycle is not None:
            self.cycle.keep_alive = False
        self.transport.close()


def protocol_class(limits: HttpLimits) -> type[TlsHttpToolsProtocol]:
    """The protocol class for one listener, with its limits bound (uvicorn takes a class)."""

    class BoundHttpProtocol(TlsHttpToolsProtocol):
        pass

    BoundHttpProtocol.limits = limits
    return BoundHttpProtocol


#: TLS record content type of alerts, and the alert descriptions a refusing server sends
#: (RFC 8446 §6, RFC 5246 §7.2).
_TLS_ALERT = 21
_TLS_ALERTS = {
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    109: "missing_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


def tls_alert_logger(
    conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: bytes
) -> None:
    """SSLContext message callback: log fatal alerts the server sends (refused handshakes).

    Called by OpenSSL for every TLS message, so it returns at once for anything but an alert.
    """
    if content_type != _TLS_ALERT or direction != "write":
        return
    if len(data) < 2 or data[0] != 2:  # warning-level alerts (close_notify) are not refusals
        return
    alert = _TLS_ALERTS.get(data[1], str(data[1]))
    EVENTS.emit(guard.TLS_REFUSED, "TLS handshake refused", alert=alert)
