"""The process-local replay cache stays within its byte budget and its time window."""

from __future__ import annotations

import time
import tracemalloc

import orjson

from cloudsms.api.replay import ReplayCache


def test_byte_budget_evicts_oldest_first() -> None:
    cache = ReplayCache(window_s=600, max_bytes=10_000)
    for i in range(100):
        cache.put(f"k{i}", b"x" * 1000)
    assert cache.bytes_held <= 10_000 and len(cache) == 10
    assert cache.get("k0") is None and cache.get("k99") == b"x" * 1000


def test_expired_entries_leave_on_put_and_get() -> None:
    cache = ReplayCache(window_s=0.05)
    cache.put("old", b"a" * 100)
    time.sleep(0.06)
    cache.put("new", b"b")
    assert len(cache) == 1 and cache.bytes_held == 1
    time.sleep(0.06)
    assert cache.get("new") is None and cache.bytes_held == 0


def test_same_key_replaced_not_double_counted() -> None:
    cache = ReplayCache(window_s=600)
    cache.put("k", b"12345")
    cache.put("k", b"123")
    assert (len(cache), cache.bytes_held, cache.get("k")) == (1, 3, b"123")


def test_held_answers_cost_their_size_not_the_encoders_buffer() -> None:
    """orjson hands back 4 KiB buffers: held as they came, 2,000 answers took ~8 MB."""
    cache = ReplayCache(window_s=600, max_bytes=10**9)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2_000):
            cache.put(f"k{i}", orjson.dumps({"SERIAL": i, "RESULT_CODE": 1, "RESULT_DESC": "OK"}))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.bytes_held < 100_000
    assert grown < 1_500_000, grown
