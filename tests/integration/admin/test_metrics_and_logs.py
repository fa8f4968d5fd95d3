"""/metrics (event counters and state read from the store) and structured JSON logs."""

from __future__ import annotations

import io
import json
import logging

from conftest import Admin
from seed import seed_customer

from cloudsms import metrics
from cloudsms.logging import bind, configure


def test_metrics_endpoint(admin: Admin) -> None:
    seed_customer(admin.store.engine, name="acme", balance_micros=1_000_000)
    metrics.packet_answered(0x01, recipients=3)
    metrics.packet_answered(0x10000006, recipients=1)
    metrics.message_states("delivered", 852, 2, segments=3)
    metrics.submit_answered("carrier-1", 0, 0.004)
    metrics.receipt_received("carrier-1", "DELIVRD", 1.5)
    metrics.report_pushed(True, 0.01)
    metrics.report_pushed(False, 0.2, transport_error=True)
    metrics.balance_low("acme")
    response = admin.client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for needle in (
        'cloudsms_packets_total{result="0x01"}',
        'cloudsms_recipients_total{result="0x10000006"}',
        'cloudsms_messages_total{country="852",state="delivered"}',
        'cloudsms_segments_total{country="852"}',
        'cloudsms_submit_latency_seconds_bucket{connector="carrier-1"',
        'cloudsms_carrier_responses_total{connector="carrier-1",status="0x00000000"}',
        'cloudsms_receipt_latency_seconds_count{connector="carrier-1"}',
        'cloudsms_report_push_attempts_total{outcome="error"}',
        "cloudsms_report_push_latency_seconds_count",
        'cloudsms_balance_low_warnings_total{customer="acme"}',
        # state from the store
        'cloudsms_connector_state{connector="carrier-1",state="down"} 1.0',
        'cloudsms_connector_window_in_use{connector="carrier-1"} 0.0',
        "cloudsms_backlog_messages 0.0",
        'cloudsms_report_outbox{state="pending"} 0.0',
        'cloudsms_customer_balance_low{currency="HKD",customer="acme"} 1.0',
    ):
        assert needle in text, needle


def test_health(admin: Admin) -> None:
    assert admin.client().get("/health").json() == {"status": "ok"}


def test_json_logs_carry_bound_context() -> None:
    stream = io.StringIO()
    handler = configure("info", json=True, stream=stream)
    try:
        log = logging.getLogger("cloudsms.test")
        with bind(sms_uid="0K2ABC", connector="hk-1"):
            log.info("submitted %d", 3, extra={"segments": 3})
        log.warning("outside")
    finally:
        for name in ("cloudsms", "uvicorn", "uvicorn.error"):
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).propagate = True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "submitted 3" and first["level"] == "info"
    assert first["sms_uid"] == "0K2ABC" and first["connector"] == "hk-1"
    assert first["segments"] == 3 and first["logger"] == "cloudsms.test"
    assert first["ts"].endswith("Z")
    assert "sms_uid" not in second
