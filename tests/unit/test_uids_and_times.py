"""SMS_UIDs and the ANSWER's TIME: the fast forms agree with the plain ones they replace."""

from __future__ import annotations

import datetime as dt
import random
import re
import time

from cloudsms.domain.ids import (
    _COUNTER_LIMIT,
    UidGenerator,
    _counter_digits,
    _time_digits,
    to_base36,
)
from cloudsms.domain.timefmt import format_uip_time, now_uip_time, parse_uip_time


def test_counter_digits_agree_with_to_base36() -> None:
    rng = random.Random(7)
    values = [0, 1, 35, 36, 1295, 1296, 46_655, 46_656, _COUNTER_LIMIT - 1]
    values += [rng.randrange(_COUNTER_LIMIT) for _ in range(20_000)]
    for value in values:
        assert _counter_digits(value) == to_base36(value, 5), value


def test_time_digits_agree_with_to_base36() -> None:
    rng = random.Random(11)
    values = [0, 1, 35, 36, 1295, 1296, 36**8 - 1, 36**8, 36**9 - 1, time.time_ns() // 1_000_000]
    values += [rng.randrange(36**9) for _ in range(20_000)]
    for value in values:
        assert _time_digits(value) == to_base36(value, 9), value


def test_uids_are_well_formed_unique_and_increasing() -> None:
    gen = UidGenerator("NODE0001")
    uids = gen.next_uids(5_000) + gen.next_uids(3)
    assert all(re.fullmatch(r"[0-9A-Z]{9}NODE0001[0-9A-Z]{5}", u) for u in uids)
    assert uids == sorted(uids) and len(set(uids)) == len(uids)
    now_ms = time.time_ns() // 1_000_000
    assert abs(int(uids[-1][:9], 36) - now_ms) < 60_000


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    gen = UidGenerator("NODE0002")
    first = gen.next_uid()
    # The last counter value of a millisecond the clock will not reach during the test.
    gen._last_ms, gen._counter = time.time_ns() // 1_000_000 + 60_000, _COUNTER_LIMIT - 1
    last, borrowed = gen.next_uids(2)
    assert first < last < borrowed
    assert last[17:] == "ZZZZZ" and borrowed[17:] == "00000"
    assert int(borrowed[:9], 36) == int(last[:9], 36) + 1


def test_now_uip_time_is_the_current_utc8_second() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = now_uip_time()
    after = dt.datetime.now(dt.UTC)
    assert before <= parse_uip_time(text) <= after
    assert text == format_uip_time(parse_uip_time(text))
