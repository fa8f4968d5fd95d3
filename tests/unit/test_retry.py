"""The retry policy is pure: same inputs, same decision; these pin its formula and its window."""

from __future__ import annotations

import random

import pytest

from cloudsms.domain.retry import RetryPolicy

HOUR_MS = 3_600_000


class Fixed:
    """A uniform source that always returns ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


MIDDLE = Fixed(0.5)  # no jitter: 1 + j * (2 * 0.5 - 1) = 1


def test_delays_grow_exponentially_then_cap() -> None:
    policy = RetryPolicy(base_s=5, factor=2, max_delay_s=1800, jitter=0.2)
    delays = [policy.next_attempt(n, 0, 0, MIDDLE) for n in range(1, 15)]
    assert delays[:5] == [5_000, 10_000, 20_000, 40_000, 80_000]
    assert all(d is not None for d in delays)
    assert delays == sorted(delays)  # type: ignore[type-var]
    assert delays[-1] == 1_800_000
    assert max(d for d in delays if d is not None) == 1_800_000


def test_huge_attempt_counts_stay_at_the_cap() -> None:
    policy = RetryPolicy()
    assert policy.delay_s(10_000) == policy.max_delay_s
    assert policy.next_attempt(10_000, 0, 1_000, MIDDLE) == 1_000 + 1_800_000


@pytest.mark.parametrize("attempts", [1, 3, 8, 20])
def test_jitter_stays_within_bounds(attempts: int) -> None:
    policy = RetryPolicy(jitter=0.2)
    base_ms = policy.delay_s(attempts) * 1000
    low = policy.next_attempt(attempts, 0, 0, Fixed(0.0))
    high = policy.next_attempt(attempts, 0, 0, Fixed(0.999999))
    assert low == int(base_ms * 0.8)
    assert high is not None and int(base_ms * 1.2) - 1 <= high <= int(base_ms * 1.2)
    rng = random.Random(7)
    samples = [policy.next_attempt(attempts, 0, 0, rng) for _ in range(500)]
    assert all(s is not None and base_ms * 0.8 <= s <= base_ms * 1.2 for s in samples)
    assert len(set(samples)) > 100  # actually spread, not constant


def test_never_gives_up_inside_the_window_default_at_least_24h() -> None:
    policy = RetryPolicy()
    assert policy.give_up_after_s >= 24 * 3600
    t0 = 1_700_000_000_000
    # Even with absurd attempt counts, inside the window the answer is a time.
    for now in (t0, t0 + 23 * HOUR_MS, t0 + 47 * HOUR_MS, t0 + 48 * HOUR_MS - 1):
        for attempts in (1, 50, 10_000):
            assert policy.next_attempt(attempts, t0, now, MIDDLE) is not None
    assert policy.next_attempt(1, t0, t0 + 48 * HOUR_MS, MIDDLE) is None
    assert policy.next_attempt(300, t0, t0 + 72 * HOUR_MS, MIDDLE) is None


def test_a_failing_report_is_tried_for_the_whole_window() -> None:
    """Simulate a callback that never answers: attempts keep coming for ≥ 48 h, then stop."""
    policy = RetryPolicy()
    rng = random.Random(1)
    t0 = now = 0
    attempts = 0
    while True:
        attempts += 1
        at = policy.next_attempt(attempts, t0, now, rng)
        if at is None:
            break
        assert at > now
        now = at
    assert now >= 48 * HOUR_MS
    assert now < 48 * HOUR_MS + 1.2 * 1_800_000  # gave up at the first failure past the window
    assert 90 < attempts < 120


def test_next_attempt_is_at_least_one_ms_later() -> None:
    policy = RetryPolicy(base_s=0.0001, max_delay_s=0.0001, jitter=0.0)
    assert policy.next_attempt(1, 0, 10, MIDDLE) == 11


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": 0},
        {"factor": 0.5},
        {"max_delay_s": 1, "base_s": 2},
        {"give_up_after_s": -1},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_attempt(0, 0, 0, MIDDLE)
