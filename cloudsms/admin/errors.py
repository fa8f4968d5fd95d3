"""The admin API's one error shape, and the translation of every error into it.

Every error answer of the REST API, whatever raised it, is::

    {"ok": false, "error": "<one readable sentence>", "status": <the HTTP status>}

``tests/integration/admin/test_error_shape.py`` pins it on every path: bad input (400), no or a
bad token (401), a read-only token changing something (403), an unknown object or route (404),
a wrong method (405), a conflicting change (409), the database down (503) and a bug (500, no
traceback on the wire).
"""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from cloudsms.exceptions import CloudSMSError, ConfigError, Conflict, NotFound, StoreError

log = logging.getLogger("cloudsms.admin")


class ApiError(Exception):
    """An error with its HTTP status, raised by the admin layer itself."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Unauthorized(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(401, message or "authentication required: Authorization: Bearer <token>")


class Forbidden(ApiError):
    def __init__(self, message: str = "") -> None:
        super().__init__(403, message or "this token is read-only: changes need an admin token")


def status_of(exc: BaseException) -> int:
    """The HTTP status for an exception of the error tree (500 for anything unexpected)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StoreError):
        return 503
    return 500


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, CloudSMSError):
        return " ".join(str(exc).split())
    return "internal error (logged on the server)"


def error_response(status: int, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = orjson.dumps({"ok": False, "error": message, "status": status})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def json_error(exc: BaseException) -> Response:
    status = status_of(exc)
    if status == 500:
        log.error("admin API error", exc_info=exc)
    return error_response(status, message_of(exc))


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: HTTPException (unknown path, method) and anything else."""
    return json_error(exc)
