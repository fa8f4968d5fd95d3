"""Prometheus metrics: cheap calls for the hot paths, and a collector that reads the store.

Two kinds of numbers:

* **Events**, counted where they happen by one call each (``packet_answered``,
  ``message_states``, ``submit_answered``, ``receipt_received``, ``report_pushed``,
  ``balance_low``). The hot ones are tallies (``cloudsms.metric_tallies``): a dict update per
  event, turned into metric families when scraped.
* **State**, read from the store when ``/metrics`` is scraped (``StoreCollector``): connector
  states and windows, the backlog, messages waiting for a receipt, the report outbox, customer
  balances below the low-balance line. These are true for the whole platform, whichever process
  is scraped, and cost nothing between scrapes.

Every process keeps its own event counters (Prometheus sums them over instances); with ``role``
api and worker in separate processes, scrape both.

    >>> from cloudsms import metrics
    >>> metrics.packet_answered(0x01, recipients=3)
    >>> metrics.submit_answered("hk-1", command_status=0, seconds=0.004)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from cloudsms.metric_tallies import CounterTally, HistogramTally, TallyCollector

log = logging.getLogger("cloudsms.metrics")

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_RECEIPT = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 25 * 3600)

#: The events of the hot paths, kept as tallies (``cloudsms.metric_tallies``: a dict update
#: each, where prometheus_client's objects cost several calls and locks per event).
PACKETS = CounterTally(
    "cloudsms_packets", "UIP packets answered, by top-level RESULT_CODE (hex).", ["result"]
)
RECIPIENTS = CounterTally(
    "cloudsms_recipients",
    "Recipients in answered packets, by the packet's RESULT_CODE.",
    ["result"],
)
MESSAGES = CounterTally(
    "cloudsms_messages",
    "Messages entering a state, by state and destination calling code.",
    ["state", "country"],
)
SEGMENTS = CounterTally("cloudsms_segments", "Segments of accepted messages.", ["country"])
SUBMIT_LATENCY = HistogramTally(
    "cloudsms_submit_latency_seconds",
    "submit_sm to submit_sm_resp, per connector.",
    ["connector"],
    buckets=_LATENCY,
)
CARRIER_RESPONSES = CounterTally(
    "cloudsms_carrier_responses",
    "submit_sm_resp command_status (hex) per connector.",
    ["connector", "status"],
)
RECEIPT_LATENCY = HistogramTally(
    "cloudsms_receipt_latency_seconds",
    "Submission to carrier receipt, per connector.",
    ["connector"],
    buckets=_RECEIPT,
)
RECEIPTS = CounterTally("cloudsms_receipts", "Carrier receipts by stat.", ["connector", "stat"])
REPORT_ATTEMPTS = CounterTally(
    "cloudsms_report_push_attempts", "Report pushes to customers, by outcome.", ["outcome"]
)
REPORT_LATENCY = HistogramTally(
    "cloudsms_report_push_latency_seconds",
    "Duration of one report push (request to answer).",
    [],
    buckets=_LATENCY,
)
_TALLIES = (
    PACKETS, RECIPIENTS, MESSAGES, SEGMENTS, SUBMIT_LATENCY, CARRIER_RESPONSES,
    RECEIPT_LATENCY, RECEIPTS, REPORT_ATTEMPTS, REPORT_LATENCY,
)  # fmt: skip
REGISTRY.register(TallyCollector(_TALLIES))
BALANCE_LOW = Counter(
    "cloudsms_balance_low_warnings",
    "Recipients refused or warnings raised because a customer's balance ran low.",
    ["customer"],
)
MO_PARTS_DROPPED = Counter(
    "cloudsms_mo_parts_dropped",
    "Held parts of inbound messages that never completed, deleted after mo_parts_ttl_s.",
)

#: Label values by RESULT_CODE, made once per code.
_result_labels: dict[int, tuple[str]] = {}
_NO_LABELS: tuple[str, ...] = ()


def packet_answered(result_code: int, recipients: int = 0) -> None:
    """One UIP ANSWER sent: call once per packet with its top-level RESULT_CODE."""
    key = _result_labels.get(result_code)
    if key is None:
        label = f"0x{result_code:02X}" if result_code < 0x100 else f"0x{result_code:08X}"
        key = _result_labels[result_code] = (label,)
    PACKETS.add(key)
    if recipients:
        RECIPIENTS.add(key, recipients)


def message_states(state: str, country_code: int, n: int = 1, segments: int = 0) -> None:
    """``n`` messages to ``country_code`` entered ``state`` (with ``segments`` in all)."""
    country = str(country_code)
    MESSAGES.add((state, country), n)
    if segments:
        SEGMENTS.add((country,), segments)


def submit_answered(connector: str, command_status: int, seconds: float) -> None:
    """A submit_sm_resp arrived ``seconds`` after its submit_sm."""
    SUBMIT_LATENCY.observe((connector,), seconds)
    CARRIER_RESPONSES.add((connector, f"0x{command_status:08X}"))


def receipt_received(connector: str, stat: str, seconds: float | None) -> None:
    """A carrier receipt (``stat`` DELIVRD, UNDELIV, …) arrived ``seconds`` after submission."""
    if seconds is not None:
        RECEIPT_LATENCY.observe((connector,), seconds)
    RECEIPTS.add((connector, stat))


def report_pushed(ok: bool, seconds: float, *, transport_error: bool = False) -> None:
    """One report push: ``ok`` when the customer answered 2xx with RESULT_CODE 1."""
    outcome = "ok" if ok else ("error" if transport_error else "refused")
    REPORT_ATTEMPTS.add((outcome,))
    REPORT_LATENCY.observe(_NO_LABELS, seconds)


def mo_parts_dropped(n: int) -> None:
    """``n`` held parts of inbound messages that never completed were deleted."""
    MO_PARTS_DROPPED.inc(n)


def balance_low(customer: str, n: int = 1) -> None:
    """``n`` recipients of ``customer`` were refused (LOCAL_REJECTED) for lack of balance."""
    BALANCE_LOW.labels(customer).inc(n)


# -- state read from the store at scrape time --------------------------------------------------


class StatusSource(Protocol):
    """What ``StoreCollector`` reads at scrape time (declared here, beside its reader, because
    metrics is a floor module; ``storage.interfaces`` lists it with the other protocols)."""

    def connector_statuses(self) -> list[Any]: ...
    def summary(self, *, window_ms: int = ..., final_window_ms: int = ...) -> Any: ...
    def report_counts(self) -> Any: ...
    def list_customers(self) -> list[Any]: ...


CONNECTOR_STATES = ("down", "connecting", "bound", "throttled", "disabled")


class StoreCollector(Collector):
    """Platform state from the store, read once per scrape (a handful of indexed queries)."""

    def __init__(self, source: Callable[[], StatusSource | None], low_balance_micros: int) -> None:
        self._source = source
        self.low_balance_micros = low_balance_micros

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self._source()
        if store is None:
            return
        try:
            yield from self._collect(store)
        except Exception:  # a scrape must not fail because the database hiccuped
            log.exception("metrics: reading the store failed")

    def _collect(self, store: StatusSource) -> Iterable[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "cloudsms_connector_state",
            "1 for the connector's current state.",
            labels=["connector", "state"],
        )
        window = GaugeMetricFamily(
            "cloudsms_connector_window_in_use",
            "Outstanding submits (queue depth at the carrier link).",
            labels=["connector"],
        )
        rate = GaugeMetricFamily(
            "cloudsms_connector_submit_rate", "Segments submitted per second.", labels=["connector"]
        )
        for s in store.connector_statuses():
            for name in CONNECTOR_STATES:
                state.add_metric([s.name, name], 1.0 if s.state == name else 0.0)
            window.add_metric([s.name], s.window_in_use)
            rate.add_metric([s.name], s.submit_rate)
        yield from (state, window, rate)
        summary = store.summary(window_ms=60_000, final_window_ms=3_600_000)
        yield GaugeMetricFamily(
            "cloudsms_backlog_messages",
            "Messages not yet handed to a carrier (ACCEPTED or QUEUED).",
            value=summary.backlog,
        )
        awaiting = GaugeMetricFamily(
            "cloudsms_awaiting_receipt_messages",
            "Submitted messages waiting for a carrier receipt.",
            labels=["connector"],
        )
        for name, n in summary.awaiting_receipt.items():
            awaiting.add_metric([name], n)
        yield awaiting
        counts = store.report_counts()
        outbox = GaugeMetricFamily(
            "cloudsms_report_outbox", "Delivery reports by outbox state.", labels=["state"]
        )
        for label in ("pending", "due", "given_up"):
            outbox.add_metric([label], getattr(counts, label))
        yield outbox
        low = GaugeMetricFamily(
            "cloudsms_customer_balance_low",
            "1 for each enabled customer whose balance is under the low-balance line.",
            labels=["customer", "currency"],
        )
        for c in store.list_customers():
            if c.enabled and c.balance_micros < self.low_balance_micros:
                low.add_metric([c.name, c.currency], 1.0)
        yield low


def registry_with(collector: Collector | None = None) -> CollectorRegistry:
    """A registry with the process's event metrics (the default registry) and ``collector``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Forward(REGISTRY))
    if collector is not None:
        registry.register(collector)
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Any]:
        return self._registry.collect()


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The text to answer ``GET /metrics`` with, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
