"""Logging set-up: text or structured JSON lines, with context (SMS_UID, connector…) bound.

``configure(level, json=True)`` (the ``log_json`` setting) makes every record one JSON object
per line::

    {"ts": "2026-01-01T04:00:00.123Z", "level": "info", "logger": "cloudsms.dispatch",
     "msg": "submitted", "sms_uid": "0K2…", "connector": "hk-1"}

Context is bound per task with ``bind(...)`` (contextvars, like structlog's
``bind_contextvars``), so everything logged while handling a message carries its SMS_UID
without passing it around; ``extra={...}`` of a single call is merged too.

    >>> from cloudsms.logging import bind, configure
    >>> configure("info", json=True)
    >>> with bind(sms_uid="0K2ABC", connector="hk-1"):
    ...     log.info("submitted")
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import sys
from collections.abc import Iterator
from typing import Any

import orjson

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "cloudsms_log_context", default=None
)


def _current() -> dict[str, Any]:
    return _context.get() or {}


#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Add ``values`` to every record logged inside the block (this task and its children)."""
    token = _context.set({**_current(), **values})
    try:
        yield
    finally:
        _context.reset(token)


def bound() -> dict[str, Any]:
    """The context bound now."""
    return dict(_current())


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (so text formats may use ``%(sms_uid)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, bound context, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(_current())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure(level: str = "info", *, json: bool = False, stream: Any = None) -> logging.Handler:
    """Set up the ``cloudsms`` logger (and uvicorn's) once; returns the handler installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("cloudsms", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_cloudsms", False)]:
            logger.removeHandler(old)
        handler._cloudsms = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
    return handler
