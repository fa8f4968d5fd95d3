"""Unit tests of the rate limiter, the key-guessing throttle and the security event budget."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudsms.api.guard import GuessThrottle, SecurityEvents, source_key
from cloudsms.api.limits import RateLimits, parse_overrides
from cloudsms.exceptions import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- RateLimits ----------------------------------------------------------------------------------


def test_unlimited_by_default() -> None:
    limits = RateLimits(0, 0)
    assert not limits.enabled
    assert all(limits.allow(1, "acme", 200) for _ in range(10_000))


def test_packet_bucket_bursts_one_second_then_refills_at_the_rate() -> None:
    clock = Clock()
    limits = RateLimits(10, 0, clock=clock)
    assert [limits.allow(1, "a", 1) for _ in range(12)].count(True) == 10
    clock.now += 0.35  # 3.5 tokens
    assert [limits.allow(1, "a", 1) for _ in range(5)].count(True) == 3


def test_message_bucket_takes_nothing_when_it_refuses() -> None:
    clock = Clock()
    limits = RateLimits(100, 10, clock=clock)
    assert limits.allow(1, "a", 8)
    assert not limits.allow(1, "a", 8)  # 2 left: refused ...
    assert limits.allow(1, "a", 2)  # ... and the 2 are still there
    assert not limits.allow(1, "a", 1)


def test_packet_refused_by_messages_gives_its_packet_token_back() -> None:
    clock = Clock()
    limits = RateLimits(2, 5, clock=clock)
    assert limits.allow(1, "a", 5)
    assert not limits.allow(1, "a", 5)  # messages refuse; the packet token must not be spent
    clock.now += 1.0
    assert limits.allow(1, "a", 5)
    assert limits.allow(1, "a", 0)  # 2 packets/s: the refused one cost nothing


def test_packet_bigger_than_the_burst_passes_when_full_and_leaves_debt() -> None:
    clock = Clock()
    limits = RateLimits(0, 50, clock=clock)
    assert limits.allow(1, "a", 200)
    clock.now += 3.0  # refilled 150 of the 200 owed: still in debt
    assert not limits.allow(1, "a", 1)
    clock.now += 1.1
    assert limits.allow(1, "a", 1)


def test_customers_have_their_own_buckets_and_overrides_by_name() -> None:
    clock = Clock()
    limits = RateLimits(1, 0, {"bulk": (0.0, 0.0), "slow": (0.5, 0.0)}, clock=clock)
    assert limits.allow(1, "a", 1) and not limits.allow(1, "a", 1)
    assert limits.allow(2, "b", 1)
    assert all(limits.allow(3, "bulk", 200) for _ in range(1000))
    assert limits.allow(4, "slow", 1) and not limits.allow(4, "slow", 1)
    clock.now += 1.0
    assert not limits.allow(4, "slow", 1)  # 0.5/s: burst of 1, next one after 2 s
    clock.now += 1.0
    assert limits.allow(4, "slow", 1)


@given(
    st.floats(0.5, 500),
    st.lists(st.tuples(st.floats(0, 0.2), st.integers(0, 200)), min_size=1, max_size=300),
)
@settings(max_examples=200, deadline=None)
def test_long_run_average_never_exceeds_rate_plus_burst(
    mps: float, steps: list[tuple[float, int]]
) -> None:
    clock = Clock()
    start = clock.now
    limits = RateLimits(0, mps, clock=clock)
    passed = 0
    for dt, messages in steps:
        clock.now += dt
        if limits.allow(1, "a", messages):
            passed += messages
    elapsed = clock.now - start
    # Burst, plus one packet of debt (at most 200), plus the rate times the time.
    assert passed <= max(1.0, mps) + 200 + mps * elapsed + 1e-6


def test_negative_rates_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        RateLimits(-1, 0)


def test_parse_overrides() -> None:
    assert parse_overrides("") == {}
    assert parse_overrides(" acme = 50/500 ,b=0/1") == {"acme": (50.0, 500.0), "b": (0.0, 1.0)}
    assert parse_overrides("a=b=1/2") == {"a=b": (1.0, 2.0)}  # last "=" splits
    for bad in ("acme", "acme=5", "=1/2", "acme=x/1", "acme=-1/1", "acme=inf/1", "acme=nan/1"):
        with pytest.raises(ConfigError):
            parse_overrides(bad)


# -- GuessThrottle -------------------------------------------------------------------------------


def test_throttle_blocks_after_limit_within_window_only() -> None:
    clock = Clock()
    throttle = GuessThrottle(limit=3, window_s=10, cooldown_s=60, clock=clock)
    assert not throttle.failed("192.0.2.1")
    assert not throttle.failed("192.0.2.1")
    clock.now += 11  # the window ended: counting starts again
    assert not throttle.failed("192.0.2.1")
    assert not throttle.failed("192.0.2.1")
    assert not throttle.blocked("192.0.2.1")
    assert throttle.failed("192.0.2.1")
    assert throttle.blocked("192.0.2.1") and not throttle.blocked("192.0.2.2")
    clock.now += 59
    assert throttle.blocked("192.0.2.1")
    clock.now += 1
    assert not throttle.blocked("192.0.2.1")


def test_ipv6_sources_are_throttled_per_64() -> None:
    throttle = GuessThrottle(limit=2, window_s=10, cooldown_s=60, clock=Clock())
    assert not throttle.failed("2001:db8:1:2::1")
    assert throttle.failed("2001:db8:1:2:ffff::9")  # same /64, other address
    assert throttle.blocked("2001:db8:1:2::77")
    assert not throttle.blocked("2001:db8:1:3::1")
    assert source_key("::ffff:192.0.2.9") == "192.0.2.9"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key(None) == "" and source_key("not an address") == "not an address"


def test_throttle_disabled_with_zero_limit() -> None:
    throttle = GuessThrottle(limit=0, window_s=10, cooldown_s=60)
    assert not any(throttle.failed("192.0.2.1") for _ in range(1000))
    assert not throttle.blocked("192.0.2.1") and not throttle.enabled


def test_throttle_memory_is_bounded_under_address_spraying() -> None:
    clock = Clock()
    throttle = GuessThrottle(limit=2, window_s=10, cooldown_s=60, max_tracked=100, clock=clock)
    for i in range(10_000):
        throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle._failures) <= 100
    for i in range(10_000):  # each address twice: every one blocked
        address = f"10.9.{i // 256 % 256}.{i % 256}"
        throttle.failed(address)
        throttle.failed(address)
    assert len(throttle._blocked) <= 100


# -- SecurityEvents --------------------------------------------------------------------------------


def test_security_events_budget_per_kind_and_summary(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("test.security")
    events = SecurityEvents(budget=3, window_s=10, logger=logger, clock=clock)
    caplog.set_level(logging.WARNING, logger="test.security")
    for _ in range(10):
        events.emit("unknown_key", "unknown key", client_ip="192.0.2.1")
    events.emit("oversized_body", "big", client_ip="192.0.2.1", limit=5)
    assert [r.event for r in caplog.records] == ["unknown_key"] * 3 + ["oversized_body"]  # type: ignore[attr-defined]
    assert caplog.records[-1].limit == 5  # type: ignore[attr-defined]
    caplog.clear()
    clock.now += 10
    events.emit("unknown_key", "unknown key", client_ip="192.0.2.1")
    assert [r.getMessage() for r in caplog.records] == [
        "7 similar security events suppressed",
        "unknown key",
    ]
    assert caplog.records[0].suppressed == 7  # type: ignore[attr-defined]
