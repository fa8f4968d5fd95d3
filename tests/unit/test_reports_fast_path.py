"""The cheap SMS_PUSH_REPORT path: the cached times and fees and the one-dump body say exactly
what the plain formatting says, whatever object carries the fields."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass

from cloudsms.domain.money import format_amount
from cloudsms.domain.reports import ReportContent, _fee, _uip_time, build_report
from cloudsms.domain.timefmt import format_uip_time


def test_cached_uip_time_equals_format_uip_time() -> None:
    rng = random.Random(7)
    samples = [0, 999, 1000, 1_764_000_005_999] + [
        rng.randrange(0, 4_102_444_800_000) for _ in range(5000)
    ]
    for ms in samples:
        expected = format_uip_time(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))
        assert _uip_time(ms) == expected
        assert _uip_time(ms) == expected  # second call: from the cache


def test_cached_fee_equals_format_amount() -> None:
    for micros in (0, 1, 50_000, 52_500, 105_000, 1_000_000, 123_456_789):
        assert _fee(micros) == format_amount(micros)


@dataclass(frozen=True, slots=True)
class Row:
    """Like storage's DueReport: the fields of ReportContent plus others."""

    id: int
    auth_key: str
    serial: int
    sms_uid: str
    sender: str
    country_code: int
    dest_msisdn: str
    sms_state: int
    result_desc: str
    report_ms: int
    customer_body: str | None
    segments: int
    fee_micros: int
    currency: str


def test_any_object_with_the_fields_builds_the_same_packet() -> None:
    fields = {
        "auth_key": "k" * 128,
        "serial": 65_535,
        "sms_uid": "5A3B394096E50X01D1FA163E81BFFF",
        "sender": "CloudSMS",
        "country_code": 852,
        "dest_msisdn": "67001111",
        "sms_state": 2,
        "result_desc": "DELIVERED",
        "report_ms": 1_764_000_000_123,
        "segments": 3,
        "fee_micros": 157_500,
        "currency": "HKD",
    }
    for body in (None, "", ' {"a": 2.50, "b": "订单"} ', "[1]", "nope"):
        content = ReportContent(customer_body=body, **fields)  # type: ignore[arg-type]
        row = Row(id=9, customer_body=body, **fields)  # type: ignore[arg-type]
        raw = build_report(content, push_ms=1_764_000_005_000)
        assert build_report(row, push_ms=1_764_000_005_000) == raw
        packet = json.loads(raw)
        assert packet["FEE"] == "0.1575"
        assert packet["TIME"] == "2025-11-25 00:00:05"
    spliced = build_report(Row(id=1, customer_body=' {"a": 2.50} ', **fields), push_ms=0)  # type: ignore[arg-type]
    assert b'"CUSTOMER_BODY":{"a": 2.50},"SMS_COUNT":3' in spliced
