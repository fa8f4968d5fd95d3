"""What the UIP listener serves: the UIP path, ``/health`` and ``/ready``, and JSON refusals.

Every process serves ``/health`` and ``/ready`` on its port (a worker too: they tell an
orchestrator it is up); a process that serves the API adds the UIP path (``settings.path``),
where POST bodies go to :meth:`UipService.handle`. The HTTP protocol
(``cloudsms.api.http_protocol``) asks :meth:`UipRoutes.takes_body` once the headers are in, and
either collects the body for the service or answers at once with :meth:`UipRoutes.answer`.

docs/security.md §1 promises that every answer on the UIP port is a JSON UIP ANSWER, so a client
that posts to a wrong path (``/dave/io2``, ``/``) or with a wrong method can parse what it gets
like any other refusal:

* an unknown path: HTTP 404, RESULT_CODE Invalid_parameter (0x10000001);
* a method a path does not take: HTTP 405 with ``Allow``, Invalid_parameter;
* an unexpected failure outside the UIP service (which answers its own): HTTP 500,
  Unknown_error (0x02), with the traceback in the log and not on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_to_bytes

import httptools

from cloudsms.api import http_wire
from cloudsms.api.answers import answer
from cloudsms.api.uip import Caller, UipService
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.packet import SEND_METHOD

log = logging.getLogger("cloudsms.api")

#: (HTTP status, body, Content-Type, extra header lines)
Answer = tuple[int, bytes, bytes, bytes]

_HEALTH = b"/health"
_READY = b"/ready"
_GET = frozenset({b"GET", b"HEAD"})
_ALLOW_GET = b"allow: GET, HEAD\r\n"
_ALLOW_POST = b"allow: POST\r\n"


def request_path(url: bytes) -> bytes:
    """The path of a request target: origin form or absolute form, query and fragment dropped,
    percent-escapes decoded (as uvicorn gave it to Starlette's router).

    >>> request_path(b"http://uip.example/dave%2Fio?x=1")
    b'/dave/io'
    """
    if url[:1] == b"/" and b"?" not in url and b"#" not in url:
        path = url
    else:
        path = httptools.parse_url(url).path or b""
    return unquote_to_bytes(path) if b"%" in path else path


class UipRoutes:
    """The route table of the UIP listener (three paths, so a comparison each, no router)."""

    def __init__(self, service: UipService | None, *, path: str, ready: Callable[[], bool]) -> None:
        self.service = service
        #: The UIP path, or None when this process does not serve the API.
        self.uip_path = path.encode() if service is not None else None
        self.ready = ready
        #: The UIP service's ``handle`` (bound once: no wrapper frame per packet).
        self.handle: Callable[[bytes, Caller], Awaitable[tuple[int, bytes]]] = (
            service.handle if service is not None else _no_service
        )

    def takes_body(self, method: bytes, path: bytes) -> bool:
        """Does this request go to the UIP service (its body collected under the limit)?"""
        return path == self.uip_path and method == b"POST"

    def answer(self, method: bytes, path: bytes) -> Answer:
        """The answer to any request that does not go to the service; never raises."""
        try:
            return self._answer(method, path)
        except Exception:
            log.exception("unexpected failure answering %s", path.decode("latin-1"))
            body = answer(SEND_METHOD, 0, ResultCode.UNKNOWN_ERROR)
            return 500, body, http_wire.JSON_UTF8, b""

    def _answer(self, method: bytes, path: bytes) -> Answer:
        if path in (_HEALTH, _READY):
            if method not in _GET:
                return _refusal(405, _ALLOW_GET)
            if path == _HEALTH:
                return 200, b'{"status":"ok"}', http_wire.JSON, b""
            if self.ready():
                return 200, b'{"ready":true}', http_wire.JSON, b""
            return 503, b'{"ready":false}', http_wire.JSON, b""
        if path == self.uip_path:  # any method but POST
            return (
                405,
                answer(
                    SEND_METHOD, 0, ResultCode.INVALID_PARAMETER, reason="only POST is accepted"
                ),
                http_wire.JSON_UTF8,
                _ALLOW_POST,
            )
        return _refusal(404)


async def _no_service(body: bytes, caller: Caller) -> tuple[int, bytes]:
    raise AssertionError("takes_body() is False when the process serves no API")


def _refusal(status: int, extra: bytes = b"") -> Answer:
    return status, answer(SEND_METHOD, 0, ResultCode.INVALID_PARAMETER), http_wire.JSON_UTF8, extra
