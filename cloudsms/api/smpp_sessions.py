"""What the customers' SMPP server keeps per account and per session: throughput, counters.

:class:`SegmentBucket` is an account's throughput limit, counted in segments (a message is taken
whole or refused); :class:`Session` is one bound session's account and what operators are shown
of it (counts, and the submit rate over the last full 10 seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudsms.domain.smpp_accounts import SmppAccount


class SegmentBucket:
    """``rate`` segments per second, a second's worth saved up at most."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self._clock = clock
        self._tokens = self.rate
        self._stamp = clock()

    def take(self, segments: int) -> bool:
        """Take ``segments`` if that many are available now (a message is not split)."""
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= segments or (segments > self.rate and self._tokens >= self.rate):
            self._tokens -= segments
            return True
        return False


#: Seconds per bucket of a session's submit rate.
RATE_BUCKET_S = 10.0


@dataclass(slots=True)
class Session:
    """A bound session: whose, and what it has done (what operators see)."""

    account: SmppAccount
    bound_at: float
    id: int = 0
    submitted: int = 0
    refused: int = 0
    receipts: int = 0
    #: Inbound messages (MO) delivered as deliver_sm.
    inbound: int = 0
    #: submit_sm in the current rate bucket, in the previous one, and the current one's start.
    _bucket_count: int = 0
    _last_bucket: int = 0
    _bucket_start: float = field(init=False)

    def __post_init__(self) -> None:
        self._bucket_start = self.bound_at

    def count_submit(self, now: float) -> None:
        self._roll(now)
        self._bucket_count += 1

    def rate(self, now: float) -> float:
        """submit_sm per second over the last full bucket."""
        self._roll(now)
        return self._last_bucket / RATE_BUCKET_S

    def _roll(self, now: float) -> None:
        elapsed = now - self._bucket_start
        if elapsed >= RATE_BUCKET_S:
            self._last_bucket = self._bucket_count if elapsed < 2 * RATE_BUCKET_S else 0
            self._bucket_count = 0
            self._bucket_start = now - elapsed % RATE_BUCKET_S
