"""Connection-level limits of the UIP listener, and the refusal each one answers.

The limits, the deadlines and why each exists are in ``cloudsms.api.http_protocol``'s module
docstring and docs/security.md §5. Every refusal at the HTTP layer is a complete response with a
JSON UIP ANSWER (RESULT_DETAIL saying which limit) and ``connection: close``: the server closes
the connection after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudsms.api import http_wire
from cloudsms.api.answers import answer
from cloudsms.config import Settings
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.packet import SEND_METHOD


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Connection-level limits of one listener (see ``cloudsms.api.http_protocol``)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 32_768
    #: 0: no cap.
    max_connections: int = 1000
    max_body_bytes: int = 262_144
    #: Idle time allowed between keep-alive requests (uvicorn's default was 75 s as well).
    keep_alive_s: float = 75.0
    #: Pipelined requests parsed ahead of the one being answered before reading pauses.
    max_pipelined: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_header_bytes=settings.max_header_bytes,
            max_connections=settings.max_connections,
            max_body_bytes=settings.max_body_bytes,
        )


#: RESULT_DETAIL of each refusal at the HTTP layer.
DETAILS = {
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


def refusal(status: int, code: ResultCode, detail: str | None = None) -> bytes:
    """A complete error response with a UIP ANSWER, announcing that the connection closes."""
    body = answer(SEND_METHOD, 0, code, reason=detail or DETAILS[status])
    return http_wire.response(status, body, close=True)


def too_large(max_body_bytes: int) -> bytes:
    """The 413 for a body over ``max_body_bytes`` (by its Content-Length or as it arrives)."""
    body = answer(
        SEND_METHOD,
        0,
        ResultCode.INVALID_CONTEXT,
        reason=f"the body is over {max_body_bytes} bytes",
    )
    return http_wire.response(413, body, close=True)
