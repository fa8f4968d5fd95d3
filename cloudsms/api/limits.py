"""Per-customer rate limits: packets/s and messages/s as token buckets (SPEC §2: Busy, 0x03).

Strategy: one bucket pair per customer id, in memory, per process. ``allow()`` is the whole hot
path cost: a dict lookup, a clock read and a few float operations; no lock (the event loop is
the only caller) and no store access. A customer's buckets are created on their first packet
with the platform defaults (``customer_packets_per_s`` / ``customer_messages_per_s``) or the
operator's named override (``customer_rate_overrides``), and refill continuously at the rate up
to one second's worth (``BURST_S``), so a client that keeps to its rate never sees Busy and a
burst of one second's traffic is absorbed.

Decisions:

* Over the limit the packet gets **Busy (0x03)** at the top level and nothing is stored or
  charged: Busy is the document's "retry later" code, and the packet may be re-sent unchanged.
  Queue_too_large (0x10000005) stays reserved for the backlog limits, which a retry in a second
  does not cure.
* A packet costs 1 packet token and one message token per recipient. Both buckets must allow it;
  tokens are taken from neither when one refuses, so a refused packet costs its sender nothing.
* A packet with more recipients than the message burst (200 recipients at 50 messages/s) passes
  when the message bucket is full and leaves it in debt: the long-run average still holds and a
  legal 200-recipient packet is never refused forever.
* Limits are per process: with N API processes behind a balancer a customer gets up to N times
  the rate (docs/security.md says so). 0 means unlimited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from cloudsms.exceptions import ConfigError

#: Bucket depth in seconds of rate: a client may burst one second's worth above its rate.
BURST_S: Final = 1.0


class _Bucket:
    """Tokens of one customer. ``rate == 0`` means that dimension is not limited."""

    __slots__ = ("last", "messages", "mps", "mps_burst", "packets", "pps", "pps_burst")

    def __init__(self, pps: float, mps: float, now: float) -> None:
        self.pps = pps
        self.mps = mps
        self.pps_burst = max(1.0, pps * BURST_S)
        self.mps_burst = max(1.0, mps * BURST_S)
        self.packets = self.pps_burst
        self.messages = self.mps_burst
        self.last = now


class RateLimits:
    """Token buckets per customer; ``allow(customer_id, name, messages)`` → may it pass now?

    >>> clock = iter([0.0, 0.0, 0.0, 0.0, 0.5]).__next__
    >>> limits = RateLimits(packets_per_s=2, messages_per_s=0, clock=clock)
    >>> [limits.allow(1, "acme", 1) for _ in range(3)]
    [True, True, False]
    >>> limits.allow(1, "acme", 1)  # half a second later: one packet's worth is back
    True
    """

    def __init__(
        self,
        packets_per_s: float,
        messages_per_s: float,
        overrides: Mapping[str, tuple[float, float]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if packets_per_s < 0 or messages_per_s < 0:
            raise ConfigError("rate limits must be 0 (unlimited) or positive")
        self.default = (float(packets_per_s), float(messages_per_s))
        self.overrides = dict(overrides or {})
        self._clock = clock
        self._buckets: dict[int, _Bucket | None] = {}

    @property
    def enabled(self) -> bool:
        """False when no customer can ever be limited (the check can be skipped entirely)."""
        return any(self.default) or any(any(v) for v in self.overrides.values())

    def allow(self, customer_id: int, name: str, messages: int) -> bool:
        """Take 1 packet token and ``messages`` message tokens, or refuse and take nothing."""
        try:
            bucket = self._buckets[customer_id]
        except KeyError:
            bucket = self._new(customer_id, name)
        if bucket is None:  # unlimited customer
            return True
        now = self._clock()
        elapsed = now - bucket.last
        bucket.last = now
        # Refill both first, so that a refusal by one does not lose the other's refill.
        if bucket.pps:
            bucket.packets = min(bucket.pps_burst, bucket.packets + elapsed * bucket.pps)
        if bucket.mps:
            bucket.messages = min(bucket.mps_burst, bucket.messages + elapsed * bucket.mps)
        if bucket.pps and bucket.packets < 1.0:
            return False
        if bucket.mps and messages and bucket.messages < min(float(messages), bucket.mps_burst):
            return False
        if bucket.pps:
            bucket.packets -= 1.0
        if bucket.mps:
            bucket.messages -= messages
        return True

    def limits_for(self, name: str) -> tuple[float, float]:
        """(packets/s, messages/s) that apply to the customer called ``name``."""
        return self.overrides.get(name, self.default)

    def _new(self, customer_id: int, name: str) -> _Bucket | None:
        pps, mps = self.limits_for(name)
        bucket = _Bucket(pps, mps, self._clock()) if pps or mps else None
        self._buckets[customer_id] = bucket
        return bucket


def parse_overrides(text: str) -> dict[str, tuple[float, float]]:
    """``"acme=50/500, bulk=0/20000"`` → {customer name: (packets/s, messages/s)}.

    >>> parse_overrides("acme=50/500, bulk=0/20000")
    {'acme': (50.0, 500.0), 'bulk': (0.0, 20000.0)}
    """
    out: dict[str, tuple[float, float]] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, rates = item.rpartition("=")
        pps_text, slash, mps_text = rates.partition("/")
        try:
            if not sep or not slash or not name.strip():
                raise ValueError(item)
            pps, mps = float(pps_text), float(mps_text)
            if not (pps >= 0 and mps >= 0) or pps == float("inf") or mps == float("inf"):
                raise ValueError(item)
        except ValueError as exc:
            raise ConfigError(
                f"customer_rate_overrides: {item!r} is not NAME=PACKETS_PER_S/MESSAGES_PER_S"
            ) from exc
        out[name.strip()] = (pps, mps)
    return out
