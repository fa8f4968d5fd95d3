"""The bytes of the UIP listener's HTTP/1.1 responses, written without a framework.

Strategy: every response the listener sends is small, complete and known before it is written
(a UIP ANSWER, a health check, a refusal), so a response is one ``bytes`` built from a cached
status line, the few headers that matter (RFC 9112 §6: ``content-length`` frames it;
``connection: close`` when the server closes after it, RFC 9112 §9.6) and a ``date`` header
(RFC 9110 §6.6.1) formatted at most once a second. Nothing is chunked and nothing is streamed.

>>> response(200, b"{}", b"application/json")[:17]
b'HTTP/1.1 200 OK\\r\\n'
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

#: ``Content-Type`` of UIP ANSWERs (and of every refusal on the UIP port).
JSON_UTF8 = b"application/json; charset=utf-8"
#: ``Content-Type`` of the health checks (as Starlette's JSONResponse sent them).
JSON = b"application/json"
#: The interim answer to ``Expect: 100-continue`` (RFC 9110 §10.1.1).
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_STATUS_LINES = {
    int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode("ascii")) for s in HTTPStatus if s >= 200
}

_date_second = 0
_date_line = b""


def date_line() -> bytes:
    """``date: <IMF-fixdate>\\r\\n`` for the current second (formatted once per second)."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_line = b"date: %s\r\n" % formatdate(now, usegmt=True).encode("ascii")
    return _date_line


def response(
    status: int,
    body: bytes,
    content_type: bytes = JSON_UTF8,
    *,
    close: bool = False,
    extra: bytes = b"",
    head: bool = False,
) -> bytes:
    """One complete response. ``extra``: more header lines, each ending in CRLF.

    ``head``: the answer to a HEAD request, its headers describing the body it leaves out
    (RFC 9110 §9.3.2).
    """
    return b"".join(
        (
            _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status,
            b"content-type: ",
            content_type,
            b"\r\ncontent-length: %d\r\n" % len(body),
            date_line(),
            b"connection: close\r\n" if close else b"",
            extra,
            b"\r\n",
            b"" if head else body,
        )
    )
