"""Refusals, told to the customer and logged for the operator.

Strategy: every refusal of the UIP endpoint carries one sentence, RESULT_DETAIL, in its ANSWER
(``cloudsms.api.answers``). This module builds the sentences that need the request's bytes
(why a body is not JSON) and writes refusals to the ``cloudsms.api.refusals`` log, with the
customer named, so an operator asked "why was my message refused?" can answer from the log.

Both run only when something is refused: the accept path of a good packet never calls them.
A customer whose client sends nothing but bad packets must not flood the log, so each customer
(and the unauthenticated callers together) gets ``budget`` lines per ``window_s``; the rest are
counted and summed up in one line when the next window opens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from cloudsms.domain.codes import ResultCode

refusals_log = logging.getLogger("cloudsms.api.refusals")

#: At most this many refused recipients are spelled out in one log line.
LISTED_RECIPIENTS = 3


def not_json(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why ``body`` (non-empty) is not a JSON document; a truncated one is named as such.

    A body cut short is the common case: a client that sets Content-Length itself and counts
    characters instead of bytes (the v2.4 document's Node.js sample does, with
    ``data.length``) sends fewer bytes than it wrote for any non-ASCII text, and the server
    reads exactly Content-Length bytes. The cut then falls inside the JSON, often inside a
    UTF-8 character.

    >>> not_json(b'{"A": 1', orjson.JSONDecodeError("unexpected end of data", "", 7))[:40]
    'the body ended before its JSON did (7 by'
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        if bad.reason == "unexpected end of data":  # cut inside a multi-byte character
            return _truncated(len(body))
        return f"the body is not UTF-8: byte 0x{body[bad.start]:02X} at offset {bad.start}"
    if exc.msg == "unexpected end of data":
        return _truncated(len(body))
    return f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


def _truncated(size: int) -> str:
    return (
        f"the body ended before its JSON did ({size} bytes received): Content-Length counts"
        " bytes, so give the UTF-8 byte length of the body, not its number of characters"
        " (Node.js: Buffer.byteLength(data))"
    )


class RefusalLog:
    """INFO lines for refused packets and recipients, at most ``budget`` per customer per window.

    >>> log = RefusalLog(budget=1)
    >>> log.packet("acme", "192.0.2.7", 7, ResultCode.INVALID_PARAMETER, "SERIAL must be …")
    """

    def __init__(
        self,
        *,
        budget: int = 20,
        window_s: float = 10.0,
        logger: logging.Logger = refusals_log,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 10_000,
    ) -> None:
        self.budget = budget
        self.window_s = window_s
        self.logger = logger
        self._clock = clock
        self.max_tracked = max_tracked
        #: customer ("" before authentication) → [window start, lines written, lines held back]
        self._windows: dict[str, list[float]] = {}

    def packet(
        self,
        customer: str | None,
        client_ip: str | None,
        serial: int,
        code: ResultCode,
        reason: str,
    ) -> None:
        """A packet refused as a whole with ``code`` because of ``reason``."""
        if self._allowed(customer or ""):
            self.logger.info(
                "%s: packet SERIAL %d refused, %s: %s",
                _who(customer, client_ip),
                serial,
                code.desc,
                reason,
                extra=_extra(customer, client_ip, serial, result_desc=code.desc, reason=reason),
            )

    def recipients(
        self,
        customer: str,
        client_ip: str | None,
        serial: int,
        refused: Sequence[tuple[str, str, str]],
        total: int,
    ) -> None:
        """Recipients of a valid packet refused one by one: (label, RESULT_DESC, reason) each."""
        if not refused or not self._allowed(customer):
            return
        listed = "; ".join(f"{who} {desc}: {why}" for who, desc, why in refused[:LISTED_RECIPIENTS])
        more = len(refused) - LISTED_RECIPIENTS
        self.logger.info(
            "%s: packet SERIAL %d: %d of %d recipients refused: %s%s",
            _who(customer, client_ip),
            serial,
            len(refused),
            total,
            listed,
            f"; and {more} more" if more > 0 else "",
            extra=_extra(
                customer, client_ip, serial, refused=len(refused), recipients=total, first=listed
            ),
        )

    def _allowed(self, key: str) -> bool:
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.window_s:
            if window is not None and window[2]:
                self.logger.info(
                    "%s: %d more refusals not logged in the last %g s",
                    f"customer {key}" if key else "unauthenticated callers",
                    int(window[2]),
                    self.window_s,
                    extra={"customer": key or None, "suppressed": int(window[2])},
                )
            elif window is None and len(self._windows) >= self.max_tracked:
                self._windows.clear()
            window = self._windows[key] = [now, 0.0, 0.0]
        if window[1] >= self.budget:
            window[2] += 1
            return False
        window[1] += 1
        return True


def _who(customer: str | None, client_ip: str | None) -> str:
    if customer:
        return f"customer {customer} ({client_ip or 'unknown address'})"
    return f"caller {client_ip or 'unknown address'}"


def _extra(
    customer: str | None, client_ip: str | None, serial: int, **fields: Any
) -> dict[str, Any]:
    return {"customer": customer, "client_ip": client_ip, "serial": serial, **fields}
