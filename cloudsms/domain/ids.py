"""SMS_UID generation.

Strategy: an SMS_UID is ``TTTTTTTTT NNNNNNNN CCCCC`` in base 36 (digits then A-Z, so string order
is numeric order): 9 characters of milliseconds since the Unix epoch (good until the year 5188),
8 characters of a random node id drawn once per generator (36^8 ≈ 2.8e12, so two processes
collide with negligible probability), and 5 characters of a per-node counter that resets every
millisecond. 22 characters in all, within the document's 32, only ``[0-9A-Z]`` (SPEC §3), and
time-ordered across processes. The counter allows 60 million UIDs per millisecond per node; if it
would overflow, the generator borrows the next millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TIME_WIDTH = 9
_NODE_WIDTH = 8
_COUNTER_WIDTH = 5
_COUNTER_LIMIT = 36**_COUNTER_WIDTH


#: Every two-digit base-36 string, so a number converts two digits per step (UIDs are made for
#: every recipient on the accept path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def to_base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        digits.append(_ALPHABET[rem])
    if value:
        raise ValueError(f"value does not fit in {width} base-36 digits")
    return "".join(reversed(digits))


def _time_digits(ms: int) -> str:
    """``to_base36(ms, 9)`` for milliseconds below 36**9, two digits per table lookup."""
    if not 0 <= ms < 36**_TIME_WIDTH:
        raise ValueError(f"value does not fit in {_TIME_WIDTH} base-36 digits")
    rest, d12 = divmod(ms, 1296)
    rest, d34 = divmod(rest, 1296)
    rest, d56 = divmod(rest, 1296)
    first, d78 = divmod(rest, 1296)
    return _ALPHABET[first] + _PAIRS[d78] + _PAIRS[d56] + _PAIRS[d34] + _PAIRS[d12]


def _counter_digits(value: int) -> str:
    """``to_base36(value, 5)`` for a counter below 36**5, two digits per table lookup."""
    high, low = divmod(value, 1296)
    return _ALPHABET[high // 1296] + _PAIRS[high % 1296] + _PAIRS[low]


class UidGenerator:
    """Thread-safe, time-ordered SMS_UID source for one process."""

    def __init__(self, node: str | None = None) -> None:
        self.node = node or to_base36(secrets.randbelow(36**_NODE_WIDTH), _NODE_WIDTH)
        if len(self.node) != _NODE_WIDTH or any(c not in _ALPHABET for c in self.node):
            raise ValueError("node id must be 8 characters of [0-9A-Z]")
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        #: The UIDs' first 17 characters (time and node) for the millisecond ``_prefix_ms``:
        #: made once per millisecond, not once per call.
        self._prefix_ms = 0
        self._prefix = _time_digits(0) + self.node

    def next_uid(self) -> str:
        return self.next_uids(1)[0]

    def next_uids(self, count: int) -> list[str]:
        """``count`` new UIDs, strictly increasing."""
        out: list[str] = []
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now > self._last_ms:
                self._last_ms, self._counter = now, 0
            prefix = self._prefix_for(self._last_ms)
            for _ in range(count):
                if self._counter >= _COUNTER_LIMIT:
                    self._last_ms, self._counter = self._last_ms + 1, 0
                    prefix = self._prefix_for(self._last_ms)
                out.append(prefix + _counter_digits(self._counter))
                self._counter += 1
        return out

    def _prefix_for(self, ms: int) -> str:
        if ms != self._prefix_ms:
            self._prefix_ms, self._prefix = ms, _time_digits(ms) + self.node
        return self._prefix
