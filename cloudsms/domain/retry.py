"""Retry policy for delivery-report pushes: a pure function from history to the next attempt.

House style habit 7 (procrastinate ``retry.py``): the policy decides, the caller persists the
decision (``report_outbox.next_attempt_ms``), and nothing waits on an in-memory timer that a
restart would lose (the counter-example is jasmin ``throwers.py`` and its ``callLater``).

SPEC §5 asks for retries "for at least 24 hours"; the default window is 48 hours so a customer
whose callback is down over a weekend night still gets every report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1): ``random.Random``, or a fake in tests."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter and a give-up window.

    After the ``attempts``-th failed attempt (1 for the first failure), at ``now``::

        if now - first >= give_up_after_s:          → None (give up)
        delay = min(max_delay_s, base_s * factor ** (attempts - 1))
        delay = delay * (1 + jitter * (2u - 1))     with u = rng.random() in [0, 1)
        next  = now + delay                         (milliseconds, at least now + 1)

    So the un-jittered delays grow 5, 10, 20, … s up to 30 min, each one spread ±20 % so that
    reports which failed together (a callback that went down) do not all come back together.
    The decision never gives up before the window has passed, whatever the attempt count: a
    report is tried for the whole window (48 h by default, ≥ 24 h as SPEC §5 requires).

    Example::

        policy = RetryPolicy(base_s=0.05)              # tests: fast retries
        when = policy.next_attempt(3, first_ms=t0, now_ms=now, rng=random.Random())
        if when is None: give_up()
    """

    #: Delay after the first failure, seconds.
    base_s: float = 5.0
    #: Growth of the delay per further failure.
    factor: float = 2.0
    #: Cap on one delay, seconds (before jitter).
    max_delay_s: float = 1800.0
    #: Window after the first enqueue during which the report is retried, seconds.
    give_up_after_s: float = 48 * 3600.0
    #: Relative spread of each delay: 0.2 means ±20 %.
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base_s <= 0:
            raise ValueError("base_s must be positive")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if self.max_delay_s < self.base_s:
            raise ValueError("max_delay_s must be at least base_s")
        if self.give_up_after_s < 0:
            raise ValueError("give_up_after_s must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay_s(self, attempts: int) -> float:
        """The un-jittered delay after ``attempts`` failures (≥ 1), capped at ``max_delay_s``."""
        if attempts < 1:
            raise ValueError("attempts counts failures so far: at least 1")
        try:
            raw = self.base_s * self.factor ** (attempts - 1)
        except OverflowError:  # a float power past 1e308: far beyond the cap anyway
            return self.max_delay_s
        return min(self.max_delay_s, raw)

    def next_attempt(
        self, attempts: int, first_ms: int, now_ms: int, rng: UniformSource
    ) -> int | None:
        """Epoch ms of the next attempt after the ``attempts``-th failure, or None to give up.

        ``first_ms`` is when the report was enqueued; the window is measured from it, so a
        report does not live longer because its attempts happened to be slow.
        """
        if now_ms - first_ms >= self.give_up_after_s * 1000:
            return None
        spread = 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        delay_ms = int(self.delay_s(attempts) * spread * 1000)
        return now_ms + max(1, delay_ms)
