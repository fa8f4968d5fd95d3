"""The SMS_PUSH_REPORT packet and the reading of the customer's ANSWER (document DR section)."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest

from cloudsms.domain.codes import LOCAL_REJECTED, SmsState
from cloudsms.domain.reports import (
    FINAL_SMS_STATES,
    INTERMEDIATE_STATES,
    ReportContent,
    build_report,
    customer_body_bytes,
    read_answer,
)

#: Keys of the document's example request (平台短信状态报告推送, 参考实例), in its order, with
#: AUTH_KEY where the field table puts it, then the three fields SPEC §5 adds.
DOCUMENT_KEYS = [
    "METHOD",
    "AUTH_KEY",
    "TYPE",
    "SERIAL",
    "TIME",
    "REPORT_TIME",
    "SOURCE_MSISDN",
    "SMS_UID",
    "SMS_RESULT_LIST",
    "CUSTOMER_BODY",
]
EXTRA_KEYS = ["SMS_COUNT", "FEE", "CURRENCY"]
ENTRY_KEYS = ["COUNTRY_CODE", "DEST_MSISDN", "SMS_STATE", "RESULT_DESC"]

# 2025-01-01 00:00:00 UTC is 08:00:00 in UTC+8.
REPORT_MS = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
PUSH_MS = REPORT_MS + 61_000


def content(**overrides: object) -> ReportContent:
    values: dict[str, object] = {
        "auth_key": "k" * 128,
        "serial": 2,
        "sms_uid": "5A3B394096E50X01D1FA163E81BFFF",
        "sender": "CloudSMS",
        "country_code": 852,
        "dest_msisdn": "67001111",
        "sms_state": 2,
        "result_desc": "DELIVERED",
        "report_ms": REPORT_MS,
        "customer_body": None,
        "segments": 2,
        "fee_micros": 105_000,
        "currency": "HKD",
    }
    values.update(overrides)
    return ReportContent(**values)  # type: ignore[arg-type]


def test_packet_has_exactly_the_documented_fields_in_order() -> None:
    packet = json.loads(build_report(content(), push_ms=PUSH_MS))
    assert list(packet) == DOCUMENT_KEYS + EXTRA_KEYS
    assert packet == {
        "METHOD": "SMS_PUSH_REPORT",
        "AUTH_KEY": "k" * 128,
        "TYPE": "REQUEST",
        "SERIAL": 2,
        "TIME": "2025-01-01 08:01:01",
        "REPORT_TIME": "2025-01-01 08:00:00",
        "SOURCE_MSISDN": "CloudSMS",
        "SMS_UID": "5A3B394096E50X01D1FA163E81BFFF",
        "SMS_RESULT_LIST": [
            {
                "COUNTRY_CODE": 852,
                "DEST_MSISDN": "67001111",
                "SMS_STATE": 2,
                "RESULT_DESC": "DELIVERED",
            }
        ],
        "CUSTOMER_BODY": {},
        "SMS_COUNT": 2,
        "FEE": "0.105",
        "CURRENCY": "HKD",
    }
    assert list(packet["SMS_RESULT_LIST"][0]) == ENTRY_KEYS


def test_customer_body_is_spliced_byte_for_byte() -> None:
    stored = '{"订单": "A-1", "n": [1, 2.50, null],  "deep": {"x": 1e3}}'
    raw = build_report(content(customer_body=stored), push_ms=PUSH_MS)
    assert b'"CUSTOMER_BODY":' + stored.encode() + b"," in raw
    assert json.loads(raw)["CUSTOMER_BODY"] == json.loads(stored)


@pytest.mark.parametrize("stored", [None, "", "[1, 2]", "not json", "  "])
def test_missing_or_unusable_customer_body_is_an_empty_object(stored: str | None) -> None:
    assert customer_body_bytes(stored) == b"{}"
    assert (
        json.loads(build_report(content(customer_body=stored), push_ms=PUSH_MS))["CUSTOMER_BODY"]
        == {}
    )


def test_local_rejected_report() -> None:
    packet = orjson.loads(
        build_report(
            content(sms_state=int(SmsState.REJECTED), result_desc=LOCAL_REJECTED, fee_micros=0),
            push_ms=PUSH_MS,
        )
    )
    assert packet["SMS_RESULT_LIST"][0]["SMS_STATE"] == 8
    assert packet["SMS_RESULT_LIST"][0]["RESULT_DESC"] == "LOCAL_REJECTED"
    assert packet["FEE"] == "0.00"


@pytest.mark.parametrize("serial", [0, 65_536, -1])
def test_serial_out_of_range_is_a_bug(serial: int) -> None:
    with pytest.raises(ValueError):
        build_report(content(serial=serial), push_ms=PUSH_MS)


def test_state_classes() -> None:
    assert {1, 6, 9} == INTERMEDIATE_STATES
    assert {2, 3, 4, 5, 7, 8} == FINAL_SMS_STATES


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b'{"METHOD":"SMS_PUSH_REPORT","TYPE":"ANSWER","SERIAL":2,"RESULT_CODE":1}'),
        (200, b'{"RESULT_CODE": 1, "RESULT_DESC": "OK"}'),
        (204, b'{"RESULT_CODE": "1"}'),
        (299, b' {"RESULT_CODE":1} \n'),
    ],
)
def test_accepted_answers(status: int, body: bytes) -> None:
    assert read_answer(status, body) == (True, "OK")


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"RESULT_CODE": 1}', "HTTP 500"),
        (301, b'{"RESULT_CODE": 1}', "HTTP 301"),
        (404, b"", "HTTP 404"),
        (200, b"", "empty body"),
        (200, b"OK", "not JSON"),
        (200, b'{"RESULT_CODE": 1', "not JSON"),
        (200, b"[1]", "not an object"),
        (200, b'{"RESULT_DESC": "OK"}', "without RESULT_CODE"),
        (200, b'{"RESULT_CODE": 2}', "RESULT_CODE 2"),
        (200, b'{"RESULT_CODE": 268435457}', "RESULT_CODE 268435457"),
        (200, b'{"RESULT_CODE": true}', "RESULT_CODE True"),
        (200, b'{"RESULT_CODE": 1.0}', "RESULT_CODE 1.0"),
        (200, b'{"RESULT_CODE": "OK"}', "RESULT_CODE 'OK'"),
    ],
)
def test_refused_answers_say_why(status: int, body: bytes, reason: str) -> None:
    ok, why = read_answer(status, body)
    assert not ok
    assert reason in why
