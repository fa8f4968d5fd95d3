"""Answers of the UIP listener outside the UIP path: JSON ANSWERs, never Starlette's plain text.

docs/security.md §1 promises that every answer on the UIP port is a JSON UIP ANSWER, so a client
that posts to a wrong path (``/dave/io2``, ``/``) or with a wrong method to ``/health`` can parse
what it gets like any other refusal:

* an unknown path: HTTP 404, RESULT_CODE Invalid_parameter (0x10000001);
* a method a path does not take: HTTP 405 with ``Allow``, Invalid_parameter (as on the UIP path);
* an unexpected failure outside the UIP endpoint (which answers its own): HTTP 500,
  Unknown_error (0x02), with the traceback in the log and not on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cloudsms.api.answers import answer
from cloudsms.domain.codes import ResultCode
from cloudsms.domain.packet import SEND_METHOD

_JSON = "application/json; charset=utf-8"


async def http_error(request: Request, exc: Exception) -> Response:
    """A routing refusal (404, 405, …) as a UIP ANSWER with the same HTTP status."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = ResultCode.INVALID_PARAMETER if status < 500 else ResultCode.UNKNOWN_ERROR
    return Response(answer(SEND_METHOD, 0, code), status, headers=exc.headers, media_type=_JSON)


async def internal_error(request: Request, exc: Exception) -> Response:
    """Any other exception: 500 + Unknown_error (Starlette still logs it and re-raises)."""
    return Response(answer(SEND_METHOD, 0, ResultCode.UNKNOWN_ERROR), 500, media_type=_JSON)


#: ``exception_handlers`` of the UIP listener's Starlette app.
HANDLERS: Mapping[Any, Any] = {HTTPException: http_error, Exception: internal_error}
