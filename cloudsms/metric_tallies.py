"""Event counters and latency histograms kept as plain numbers, exported when scraped.

Why not prometheus_client's ``Counter`` and ``Histogram`` on the hot paths: each ``inc`` is
five Python calls and a lock, each ``observe`` a loop over the buckets with two more locks —
~4 % of the worker process's CPU under the side-by-side harness for the three or four events
a message makes there. A tally is one dict update (or a ``bisect`` and two list updates) under
one uncontended lock; ``TallyCollector`` turns the tallies into the same metric families (same
names, labels and buckets) when ``/metrics`` is read, through prometheus_client's documented
custom-collector interface.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class CounterTally:
    """A counter by label values: ``add(("0x01",), 3)``. Exposed as ``NAME_total``."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()  # counted from the loop's thread, read by the scraper's

    def add(self, key: tuple[str, ...], amount: float = 1) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0) + amount

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        with self._lock:
            values = list(self.values.items())
        for key, value in values:
            family.add_metric(list(key), value)
        return family


class HistogramTally:
    """A histogram by label values, with prometheus_client's bucket rule (``value <= bound``)."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        #: Per label values: a count per bucket (the last one +Inf), then the sum.
        self.rows: dict[tuple[str, ...], list[float]] = {}
        self._lock = threading.Lock()

    def observe(self, key: tuple[str, ...], value: float) -> None:
        index = bisect_left(self.bounds, value)  # the first bound >= value, or +Inf
        with self._lock:
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = [0.0] * (len(self.bounds) + 2)
            row[index] += 1
            row[-1] += value

    def family(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        with self._lock:
            rows = [(key, list(row)) for key, row in self.rows.items()]
        names = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for key, row in rows:
            cumulative, total = [], 0.0
            for name, count in zip(names, row[:-1], strict=True):
                total += count
                cumulative.append((name, total))
            family.add_metric(list(key), cumulative, sum_value=row[-1])
        return family


class TallyCollector(Collector):
    """The tallies as metric families, for a prometheus_client registry."""

    def __init__(self, tallies: Iterable[CounterTally | HistogramTally]) -> None:
        self.tallies = list(tallies)

    def collect(self) -> Iterator[Metric]:
        for tally in self.tallies:
            yield tally.family()
