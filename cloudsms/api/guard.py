"""Security events and AUTH_KEY guessing throttle (HOUSE_STYLE §10: a peer is hostile).

Strategy:

* :class:`SecurityEvents` writes every security event to the ``cloudsms.security`` logger with
  structured ``extra`` (``event``, ``client_ip`` and event fields), so a SIEM can match on
  ``event`` without parsing text. A peer must not be able to flood the log: each event kind
  gets ``budget`` lines per ``window_s``; the rest are counted and reported in one line when
  the next window opens ("N similar events suppressed").
* :class:`GuessThrottle` counts unknown AUTH_KEYs per source address. After ``limit`` of them
  within ``window_s`` the address is blocked for ``cooldown_s``: its packets get
  Channel_not_exist (0x05) at once, without a key lookup, and the block is logged once. IPv6
  sources are counted per /64, since one host can hold a whole /64 and rotate through it.
  Memory is bounded: at most ``max_tracked`` addresses are tracked; past that, expired entries
  are dropped, and if that is not enough the oldest half goes (an attacker spraying addresses
  then only resets counters, which throttling by address cannot stop anyway).

The hot path cost for a caller that is not blocked is one truthiness test of an empty dict, or
one dict lookup while some address is blocked.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any, Final

security_log = logging.getLogger("cloudsms.security")

#: Event names, the ``event`` field of every security log record (docs/security.md lists them).
UNKNOWN_KEY: Final = "unknown_key"
NOT_WHITELISTED: Final = "source_ip_not_whitelisted"
NO_WHITELIST: Final = "whitelist_required"
UNKNOWN_SOURCE: Final = "source_address_unknown"
CERT_MISMATCH: Final = "client_cert_mismatch"
GUESSING_THROTTLED: Final = "key_guessing_throttled"
OVERSIZED_BODY: Final = "oversized_body"
MALFORMED_HTTP: Final = "malformed_http"
HEADERS_TOO_LARGE: Final = "headers_too_large"
HEADER_TIMEOUT: Final = "header_timeout"
BODY_TIMEOUT: Final = "body_timeout"
CONNECTION_CAP: Final = "connection_cap"
TLS_REFUSED: Final = "tls_handshake_refused"


class SecurityEvents:
    """The ``cloudsms.security`` log, at most ``budget`` lines per event kind per window."""

    def __init__(
        self,
        *,
        budget: int = 50,
        window_s: float = 10.0,
        logger: logging.Logger = security_log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.window_s = window_s
        self.logger = logger
        self._clock = clock
        #: event → [window start, lines written in it, lines suppressed in it]
        self._windows: dict[str, list[float]] = {}

    def emit(
        self, event: str, message: str, *, client_ip: str | None = None, **fields: Any
    ) -> None:
        """Log one event (warning level) unless this kind is over its budget in this window."""
        now = self._clock()
        window = self._windows.get(event)
        if window is None or now - window[0] >= self.window_s:
            if window is not None and window[2]:
                self.logger.warning(
                    "%d similar security events suppressed",
                    int(window[2]),
                    extra={"event": event, "suppressed": int(window[2])},
                )
            window = self._windows[event] = [now, 0.0, 0.0]
        if window[1] >= self.budget:
            window[2] += 1
            return
        window[1] += 1
        self.logger.warning(message, extra={"event": event, "client_ip": client_ip, **fields})

    def reset(self) -> None:
        """Forget the budgets (tests that count events start from a clean window)."""
        self._windows.clear()


#: The process-wide event log: the HTTP protocol and the UIP service share the budgets.
EVENTS = SecurityEvents()


def source_key(ip: str | None) -> str:
    """The unit an address is throttled by: the IPv4 address itself, or the IPv6 /64."""
    if ip is None:
        return ""
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip.partition("%")[0])
    except ValueError:
        return ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class GuessThrottle:
    """Blocks a source address that sent ``limit`` unknown AUTH_KEYs within ``window_s``.

    >>> now = [0.0]
    >>> throttle = GuessThrottle(limit=2, window_s=60, cooldown_s=300, clock=lambda: now[0])
    >>> throttle.failed("192.0.2.7"), throttle.failed("192.0.2.7")
    (False, True)
    >>> throttle.blocked("192.0.2.7"), throttle.blocked("192.0.2.8")
    (True, False)
    >>> now[0] = 301.0
    >>> throttle.blocked("192.0.2.7")
    False
    """

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        cooldown_s: float,
        max_tracked: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.max_tracked = max_tracked
        self._clock = clock
        #: source → [window start, unknown keys in the window]
        self._failures: dict[str, list[float]] = {}
        #: source → monotonic time the block ends
        self._blocked: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def blocked(self, ip: str | None) -> bool:
        """Is this source in its cool-down? (The hot path: free while nobody is blocked.)"""
        if not self._blocked:
            return False
        key = ip if ip is None or ":" not in ip else source_key(ip)
        until = self._blocked.get(key or "")
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._blocked[key or ""]
        return False

    def failed(self, ip: str | None) -> bool:
        """Count one unknown key from ``ip``; True when this one starts a block."""
        if self.limit <= 0:
            return False
        key = source_key(ip)
        now = self._clock()
        entry = self._failures.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            if entry is not None:
                del self._failures[key]  # re-inserted below: insertion order stays age order
            elif len(self._failures) >= self.max_tracked:
                self._prune(now)
            entry = self._failures[key] = [now, 0.0]
        entry[1] += 1
        if entry[1] < self.limit:
            return False
        del self._failures[key]
        if len(self._blocked) >= self.max_tracked:
            self._blocked = {k: u for k, u in self._blocked.items() if u > now}
            if len(self._blocked) >= self.max_tracked:
                self._blocked.clear()
        self._blocked[key] = now + self.cooldown_s
        return True

    def _prune(self, now: float) -> None:
        live = {k: e for k, e in self._failures.items() if now - e[0] < self.window_s}
        if len(live) >= self.max_tracked:
            # Oldest windows first: dicts keep insertion order, and windows are (re)inserted
            # when they open, so the first half is the oldest half.
            keep = list(live.items())[len(live) // 2 :]
            live = dict(keep)
        self._failures = live
