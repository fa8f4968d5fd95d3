"""The SDK's pure parts: recipients, answers, packets, SERIALs, the retry policy, the receiver."""

from __future__ import annotations

import datetime as dt
import decimal
import ssl
from typing import Any

import orjson
import pytest

from cloudsms.client import Recipient, Report, ReportReceiver, ResultCode, SmsState
from cloudsms_client._core import (
    REPLAY_SAFE_S,
    Attempt,
    ClientCore,
    RetryPolicy,
    SerialCounter,
    chunks,
    read_response,
    ssl_context,
    transport_failure,
)
from cloudsms_client.models import as_recipient, parse_query_answer, parse_send_answer


@pytest.mark.parametrize(
    "value",
    ["852-67000011", "+852-67000011", " 852-67000011 ", ("852", "67000011"), (852, "67000011")],
)
def test_recipient_forms(value: Any) -> None:
    assert as_recipient(value) == Recipient(852, "67000011")
    assert str(as_recipient(value)) == "852-67000011"


@pytest.mark.parametrize("value", ["67000011", "abc-123", ("x", "1"), (True, "1"), (0, "1"), 5])
def test_recipient_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        as_recipient(value)


def test_number_goes_to_the_platform_unchecked() -> None:
    # The platform answers a bad number per recipient; the SDK must not sink the whole call.
    assert as_recipient("852-67ab") == Recipient(852, "67ab")


def test_send_answer_with_details() -> None:
    answer = {
        "METHOD": "SMS_SEND_REQUEST",
        "TYPE": "ANSWER",
        "SERIAL": 9,
        "TIME": "2026-01-01 12:00:00",
        "RESULT_CODE": 1,
        "RESULT_DESC": "OK",
        "DETAIL_LIST": [
            {"RESULT_CODE": 1, "RESULT_DESC": "OK", "DEST_MSISDN": "67000011",
             "COUNTRY_CODE": 852, "SMS_UID": "ABC"},
            {"RESULT_CODE": 0x10000006, "RESULT_DESC": "Intercept", "DEST_MSISDN": "67000012",
             "COUNTRY_CODE": 852, "SMS_UID": ""},
        ],
    }  # fmt: skip
    result = parse_send_answer(answer, [Recipient(852, "67000011"), Recipient(852, "67000012")])
    assert result.ok and result.serial == 9 and result.time == "2026-01-01 12:00:00"
    assert [r.code for r in result.recipients] == [ResultCode.OK, ResultCode.INTERCEPT]
    assert [r.sms_uid for r in result.accepted] == ["ABC"]
    assert [r.msisdn for r in result.refused] == ["67000012"]


def test_refused_packet_fills_each_recipient() -> None:
    answer = {"SERIAL": 3, "RESULT_CODE": 3, "RESULT_DESC": "Busy", "DETAIL_LIST": []}
    result = parse_send_answer(answer, [Recipient(852, "1"), Recipient(86, "2")], attempts=4)
    assert result.code is ResultCode.BUSY and not result.ok and result.attempts == 4
    assert [(r.country_code, r.msisdn, r.code, r.sms_uid) for r in result.recipients] == [
        (852, "1", ResultCode.BUSY, ""),
        (86, "2", ResultCode.BUSY, ""),
    ]


def test_result_detail_is_read_top_level_and_per_recipient() -> None:
    """RESULT_DETAIL (the platform's sentence on why) is exposed; absent reads as ""."""
    answer = {
        "RESULT_CODE": 0x10000001, "RESULT_DESC": "Invalid_parameter",
        "RESULT_DETAIL": "none of the 2 recipients was accepted: see each DETAIL_LIST entry",
        "DETAIL_LIST": [
            {"RESULT_CODE": 0x10000001, "RESULT_DESC": "Invalid_parameter",
             "RESULT_DETAIL": "DEST_MSISDN 1380013800 has 10 digits; mainland China mobiles have"
             " 11", "DEST_MSISDN": "1380013800", "COUNTRY_CODE": 86, "SMS_UID": ""},
            {"RESULT_CODE": 0x1000000F, "RESULT_DESC": "Unpriced_area", "DEST_MSISDN": "1",
             "COUNTRY_CODE": 49, "SMS_UID": ""},
        ],
    }  # fmt: skip
    result = parse_send_answer(answer, [Recipient(86, "1380013800"), Recipient(49, "1")])
    assert result.detail.startswith("none of the 2 recipients")
    assert [r.detail for r in result.recipients] == [
        "DEST_MSISDN 1380013800 has 10 digits; mainland China mobiles have 11",
        "",
    ]
    refused = {"RESULT_CODE": 3, "RESULT_DESC": "Busy", "RESULT_DETAIL": "the platform is busy"}
    [packet] = [parse_send_answer(refused, [Recipient(852, "1")])]
    assert packet.detail == packet.recipients[0].detail == "the platform is busy"
    [state] = parse_query_answer({**refused, "RESULT_DETAIL": "SMS_UID_LIST is empty"}, ["U"])
    assert state.detail == "SMS_UID_LIST is empty"


def test_unknown_code_reads_as_unknown_error() -> None:
    result = parse_send_answer({"RESULT_CODE": 0x7777, "RESULT_DESC": "New"}, [Recipient(1, "2")])
    assert result.code is ResultCode.UNKNOWN_ERROR and result.desc == "New"


def test_query_answer() -> None:
    answer = {
        "RESULT_CODE": 1,
        "SMS_RESULT_LIST": [
            {"SMS_UID": "B", "RESULT_CODE": 0x1000000E, "RESULT_DESC": "DB_not_find"},
            {"SMS_UID": "A", "RESULT_CODE": 1, "RESULT_DESC": "OK", "COUNTRY_CODE": 852,
             "DEST_MSISDN": "67000011", "SMS_STATE": 2, "STATE_DESC": "DELIVERED",
             "SUBMIT_TIME": "2026-01-01 12:00:00", "REPORT_TIME": "2026-01-01 12:00:05",
             "SMS_COUNT": 2, "FEE": "0.105", "CURRENCY": "HKD"},
        ],
    }  # fmt: skip
    a, b, c = parse_query_answer(answer, ["A", "B", "C"])
    assert a.ok and a.sms_state is SmsState.DELIVERED and a.fee == decimal.Decimal("0.105")
    assert (a.sms_count, a.currency, a.msisdn) == (2, "HKD", "67000011")
    assert b.code is ResultCode.DB_NOT_FIND and b.sms_state is None
    assert c.code is ResultCode.DB_NOT_FIND  # absent from the answer
    refused = parse_query_answer({"RESULT_CODE": 5}, ["A", "B"])
    assert [r.code for r in refused] == [ResultCode.CHANNEL_NOT_EXIST] * 2


@pytest.mark.parametrize(
    "body", [b"[" * 60_000, b'{"SERIAL": NaN}', b'{"SERIAL": -Infinity}', b"\xff{}", b"{"]
)
async def test_receiver_refuses_what_is_not_json(body: bytes) -> None:
    """The SDK parses with the stdlib: deep nesting and NaN are Invalid_context, not a crash."""
    answer, reports = await ReportReceiver("k", lambda r: None).handle(body)
    assert orjson.loads(answer)["RESULT_CODE"] == ResultCode.INVALID_CONTEXT and reports == []


def test_serial_counter_wraps() -> None:
    counter = SerialCounter(start=65_534)
    assert [counter.next() for _ in range(4)] == [65_534, 65_535, 1, 2]
    with pytest.raises(ValueError):
        SerialCounter(start=0)


def test_retry_policy() -> None:
    policy = RetryPolicy(retries=3, backoff=0.5, max_backoff=1.5)
    retry = Attempt(None, "timeout", retryable=True)
    assert [policy.next_delay(n, retry, 0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, None]
    assert policy.next_delay(1, Attempt({"RESULT_CODE": 1}), 0) is None
    # Never retry past the replay window: a late retry could be taken for a new packet.
    assert policy.next_delay(1, retry, REPLAY_SAFE_S - 0.1) is None


def test_read_response() -> None:
    busy = read_response(200, b'{"RESULT_CODE": 3}')
    assert busy.answer == {"RESULT_CODE": 3} and busy.retryable
    queue = read_response(200, b'{"RESULT_CODE": 268435461}')
    assert queue.retryable
    forbidden = read_response(403, b'{"RESULT_CODE": 5}')
    assert forbidden.answer is not None and not forbidden.retryable
    gateway = read_response(502, b"<html>Bad Gateway</html>")
    assert gateway.answer is None and gateway.retryable and "HTTP 502" in gateway.error
    missing = read_response(404, b"Not Found")
    assert missing.answer is None and not missing.retryable
    assert read_response(200, b"").answer is None
    assert transport_failure(TimeoutError("read timed out")).retryable


def core(**kw: Any) -> ClientCore:
    defaults: dict[str, Any] = {
        "route_id": "R1",
        "signature": None,
        "signature_type": None,
        "sender": None,
        "retries": 3,
        "backoff": 0.5,
    }
    return ClientCore("K" * 128, **{**defaults, **kw})


def _options(c: ClientCore, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "route_id": None,
        "priority": 0,
        "customer_body": None,
        "send_time": None,
        "signature": None,
        "signature_type": None,
        "sender": None,
    }
    return c.options(**{**args, **kw})


def test_send_packet_shape() -> None:
    c = core(signature="CloudSMS", signature_type=1)
    when = dt.datetime(2026, 1, 1, 4, 0, tzinfo=dt.UTC)
    opts = _options(c, priority=1, customer_body={"id": 7}, send_time=when, sender="ACME")
    packet = orjson.loads(c.send_packet("hi", [Recipient(852, "67000011")], opts))
    assert list(packet)[:8] == [
        "METHOD", "TYPE", "SERIAL", "TIME", "AUTH_KEY", "ROUTE_ID", "MULTI_MSISDN_LIST",
        "SMS_CONTENT",
    ]  # fmt: skip
    assert packet["METHOD"] == "SMS_SEND_REQUEST" and packet["TYPE"] == "REQUEST"
    assert packet["SERIAL"] == 1 and packet["VERSION"] == "2021-01-01"
    assert packet["MULTI_MSISDN_LIST"] == [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}]
    assert (packet["SIGNATURE"], packet["SIGNATURE_TYPE"]) == ("CloudSMS", 1)
    assert packet["ORIGINAL_ADDR"] == "ACME" and packet["PRIORITY"] == 1
    assert packet["SMS_SEND_TIME"] == "2026-01-01 12:00:00"  # UTC+8
    assert packet["CUSTOMER_BODY"] == {"id": 7}
    plain = orjson.loads(c.send_packet("hi", [Recipient(1, "2")], _options(c, signature="")))
    assert plain["SERIAL"] == 2
    assert "PRIORITY" not in plain and "SMS_SEND_TIME" not in plain and "SIGNATURE" not in plain
    query = orjson.loads(c.query_packet(["A", "B"]))
    assert query["METHOD"] == "DR_QUERY" and query["SMS_UID_LIST"] == ["A", "B"]


def test_options_refused() -> None:
    with pytest.raises(ValueError, match="route_id"):
        _options(core(route_id=None))
    with pytest.raises(ValueError, match="priority"):
        _options(core(), priority=2)
    with pytest.raises(ValueError, match="timezone-aware"):
        _options(core(), send_time=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        core(retries=-1)


def test_chunks() -> None:
    assert [len(c) for c in chunks(list(range(450)))] == [200, 200, 50]
    assert chunks([]) == []


def test_ssl_context() -> None:
    assert ssl_context(True, None) is True
    off = ssl_context(False, None)
    assert isinstance(off, ssl.SSLContext) and off.verify_mode is ssl.CERT_NONE
    own = ssl.create_default_context()
    assert ssl_context(own, None) is own
    made = ssl_context("/etc/ssl/certs", None)
    assert isinstance(made, ssl.SSLContext) and made.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_receiver_handle_without_network() -> None:
    seen: list[Report] = []
    receiver = ReportReceiver("K" * 128, seen.append)
    packet = {
        "METHOD": "SMS_PUSH_REPORT", "TYPE": "REQUEST", "SERIAL": 7, "TIME": "t",
        "AUTH_KEY": "K" * 128, "SMS_UID": "U1", "SOURCE_MSISDN": "CloudSMS",
        "SMS_RESULT_LIST": [{"COUNTRY_CODE": 65, "DEST_MSISDN": "7000", "SMS_STATE": 8,
                             "RESULT_DESC": "LOCAL_REJECTED"}],
        "FEE": "0.00", "CURRENCY": "HKD",
    }  # fmt: skip
    answer, reports = await receiver.handle(orjson.dumps(packet))
    assert orjson.loads(answer)["RESULT_CODE"] == 1 and reports == seen
    [report] = seen
    assert report.sms_state is SmsState.REJECTED and report.result_desc == "LOCAL_REJECTED"
    assert report.fee == decimal.Decimal("0.00") and report.customer_body == {}
    assert report.sms_count is None and report.reported_at is None
    bad_fee = await receiver.handle(orjson.dumps({**packet, "FEE": "lots"}))
    assert orjson.loads(bad_fee[0])["RESULT_CODE"] == ResultCode.INVALID_PARAMETER
    with pytest.raises(ValueError):
        ReportReceiver("", seen.append)
