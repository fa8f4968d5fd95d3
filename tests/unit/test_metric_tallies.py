"""Tallies expose exactly what prometheus_client's own Counter and Histogram would."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from cloudsms.metric_tallies import CounterTally, HistogramTally, TallyCollector

BUCKETS = (0.001, 0.01, 0.1, 1, 2.5)
#: Below, on and between the bounds, and past the last one (+Inf).
VALUES = (0.0005, 0.001, 0.004, 0.01, 0.5, 1.0, 2.5, 3.0, 40.0)


def _lines(registry: CollectorRegistry) -> list[str]:
    """The exposition's sample lines, without the ``_created`` ones (tallies keep no creation
    time; Prometheus does not need it)."""
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "_created" not in line)


def test_the_same_events_give_the_same_exposition() -> None:
    reference = CollectorRegistry()
    counter = Counter("demo_events", "Events.", ["kind"], registry=reference)
    histogram = Histogram("demo_seconds", "Latency.", ["link"], buckets=BUCKETS,
                          registry=reference)  # fmt: skip
    plain = Histogram("demo_plain_seconds", "No labels.", buckets=BUCKETS, registry=reference)

    tallied = CollectorRegistry()
    events = CounterTally("demo_events", "Events.", ["kind"])
    seconds = HistogramTally("demo_seconds", "Latency.", ["link"], BUCKETS)
    plain_seconds = HistogramTally("demo_plain_seconds", "No labels.", [], BUCKETS)
    tallied.register(TallyCollector([events, seconds, plain_seconds]))

    for n, value in enumerate(VALUES):
        kind = "a" if n % 3 else "b"
        counter.labels(kind).inc(n)
        events.add((kind,), n)
        histogram.labels(f"link-{n % 2}").observe(value)
        seconds.observe((f"link-{n % 2}",), value)
        plain.observe(value)
        plain_seconds.observe((), value)

    assert _lines(tallied) == _lines(reference)
    assert 'demo_seconds_bucket{le="+Inf",link="link-0"} 5.0' in _lines(tallied)


def test_counts_from_several_threads_are_all_kept() -> None:
    events = CounterTally("demo_threads", "Events.", ["kind"])

    def count() -> None:
        for _ in range(20_000):
            events.add(("x",))

    threads = [threading.Thread(target=count) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert events.values[("x",)] == 80_000
