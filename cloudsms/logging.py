"""Logging set-up: text or structured JSON lines, with context (SMS_UID, connector…) bound.

``configure(level, json=True)`` (the ``log_json`` setting) makes every record one JSON object
per line::

    {"ts": "2026-01-01T04:00:00.123Z", "level": "info", "logger": "cloudsms.dispatch",
     "msg": "submitted", "sms_uid": "0K2…", "connector": "hk-1"}

Text lines (the default) end with the same context as ``key=value`` pairs, so a line an operator
acts on names what it is about (the client address of a security event, the SMS_UID and
customer of a failed push), and their time carries its zone: UTC+8, the zone of every other time
the platform shows (``TextFormatter``)::

    2026-01-01 12:00:00.123+08:00 WARNING cloudsms.security: wrong AUTH_KEY event=bad_key
        client_ip=203.0.113.9 customer=acme

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


#: Extras that are not context: uvicorn's coloured copy of its own message.
_NOT_CONTEXT = frozenset({"color_message"})

#: The zone of text log times: the platform's wall clock (SPEC §1), written as +08:00.
TEXT_TZ = dt.timezone(dt.timedelta(hours=8))


def _record_context(record: logging.LogRecord) -> dict[str, Any]:
    """A record's context: the bound values and the ``extra=`` of its call."""
    data = dict(_current())
    for key, value in vars(record).items():
        if key not in _STANDARD and key not in _NOT_CONTEXT and not key.startswith("_"):
            data[key] = value
    return data


def _text_value(value: Any) -> str:
    """A value of a ``key=value`` pair: bare when it is one word, else JSON-quoted."""
    text = value if isinstance(value, str) else str(value)
    if text and not any(c.isspace() or c in '="' for c in text):
        return text
    return orjson.dumps(text).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …``: the time in UTC+8 with its offset, the
    record's context (bound values and extras) after the message, a traceback below it."""

    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, TEXT_TZ)
        line = (
            f"{when.isoformat(sep=' ', timespec='milliseconds')} {record.levelname} "
            f"{record.name}: {record.getMessage()}"
        )
        pairs = [
            f"{k}={_text_value(v)}" for k, v in _record_context(record).items() if v is not None
        ]
        if pairs:
            line += " " + " ".join(pairs)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


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
        data.update(_record_context(record))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure(level: str = "info", *, json: bool = False, stream: Any = None) -> logging.Handler:
    """Set up the ``cloudsms`` logger (and uvicorn's) once; returns the handler installed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    for name in ("cloudsms", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_cloudsms", False)]:
            logger.removeHandler(old)
        handler._cloudsms = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
    # uvicorn's own start and stop lines ("Uvicorn running on …") repeat cloudsms's "listening
    # on …" and "stopping" lines without saying which listener: shown at debug level only.
    if logging.getLogger("cloudsms").level > logging.DEBUG:
        logging.getLogger("uvicorn.error").setLevel(
            max(logging.WARNING, logging.getLogger("cloudsms").level)
        )
    return handler
