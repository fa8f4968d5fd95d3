"""Rate limiting and back-off for connectors: a token bucket and an exponential back-off.

Strategy: both are tiny objects with one job each (naz ``throttle.py`` style). The token bucket
refills continuously at ``rate`` tokens per second up to ``burst``; a sender asks how long until
the next token (``wait_s``) and sets one timer for it, with no timer per token. The back-off
doubles from ``initial`` to ``maximum`` and resets on success.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: A token, give or take rounding: after waiting exactly ``wait_s`` the refill may come out a
#: hair short of 1.0, and the next wait would be too short for the clock to move.
_WHOLE = 1.0 - 1e-9


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up.

    >>> bucket = TokenBucket(rate=20)   # 20 segments/s, burst of 2
    >>> bucket.try_take(), bucket.try_take(), bucket.try_take()
    (True, True, False)
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (use no bucket for unlimited)")
        self.rate = float(rate)
        #: Small burst: a tenth of a second's worth, at least one token.
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 10)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self) -> bool:
        """Take a token if one is available now."""
        self._refill()
        if self._tokens >= _WHOLE:
            self._tokens -= 1.0
            return True
        return False

    def wait_s(self) -> float:
        """Seconds until a token is there (0.0: one is there now); takes nothing."""
        self._refill()
        return 0.0 if self._tokens >= _WHOLE else (1.0 - self._tokens) / self.rate


class Backoff:
    """Exponential back-off: ``initial``, then doubling up to ``maximum``; ``reset()`` on success.

    >>> b = Backoff(0.5, 2.0)
    >>> [b.next() for _ in range(4)]
    [0.5, 1.0, 2.0, 2.0]
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = float(initial)
        self.maximum = max(float(maximum), self.initial)
        self._next = self.initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, delay * 2)
        return delay

    def peek(self) -> float:
        return self._next

    def reset(self) -> None:
        self._next = self.initial
