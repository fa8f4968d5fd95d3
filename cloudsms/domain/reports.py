"""The SMS_PUSH_REPORT packet (document section 平台短信状态报告推送) and its ANSWER.

Packet shape, in the document's field order (its table puts AUTH_KEY second), then the three
fields SPEC §5 adds::

    {"METHOD": "SMS_PUSH_REPORT", "AUTH_KEY": "…128…", "TYPE": "REQUEST", "SERIAL": 2,
     "TIME": "2025-11-25 00:00:05", "REPORT_TIME": "2025-11-25 00:00:03",
     "SOURCE_MSISDN": "CloudSMS", "SMS_UID": "5A3B…",
     "SMS_RESULT_LIST": [{"COUNTRY_CODE": 852, "DEST_MSISDN": "67xxxx11",
                          "SMS_STATE": 2, "RESULT_DESC": "DELIVERED"}],
     "CUSTOMER_BODY": {…},
     "SMS_COUNT": 1, "FEE": "0.0525", "CURRENCY": "HKD"}

Decisions:

- ``CUSTOMER_BODY`` is the stored text spliced in byte for byte ("无修改", unchanged: ``2.50``
  stays ``2.50``, key order and spacing stay); ``{}`` when the customer sent none (as the
  document's example shows) or when the stored text is somehow not a JSON object.
- ``FEE`` is a decimal string (``money.format_amount``: exact, never a float); ``SMS_COUNT`` the
  message's segments; ``CURRENCY`` the customer's currency. A LOCAL_REJECTED report has FEE
  ``"0.00"`` (nothing was charged).
- ``RESULT_DESC`` is the SMS_STATE name (``DELIVERED`` …) or ``LOCAL_REJECTED`` (error 60).

The ANSWER counts as accepted only with HTTP 2xx and a JSON object whose RESULT_CODE is 1; the
integer 1 or the string "1" (some frameworks stringify numbers). The echoed SERIAL and METHOD
are not checked: a customer who answers OK has the report, whatever else it writes.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Protocol

import orjson

from cloudsms.domain.codes import SmsState
from cloudsms.domain.money import format_amount

METHOD = "SMS_PUSH_REPORT"

#: SMS_STATE values that are not final: pushed only to customers who opted in.
INTERMEDIATE_STATES: frozenset[int] = frozenset(
    {SmsState.ENROUTE, SmsState.ACCEPTED, SmsState.IDLE}
)
#: Final SMS_STATE values: at most one is ever pushed per SMS_UID.
FINAL_SMS_STATES: frozenset[int] = frozenset(int(s) for s in SmsState) - INTERMEDIATE_STATES

#: Longest answer body read from a customer (a report ANSWER is ~120 bytes).
MAX_ANSWER_BYTES = 65_536


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportContent:
    """Everything one push needs, independent of the database row that holds it."""

    auth_key: str
    serial: int
    sms_uid: str
    #: The sender the message went out with (SOURCE_MSISDN).
    sender: str
    country_code: int
    dest_msisdn: str
    sms_state: int
    result_desc: str
    #: When the carrier (or the platform) reported the state, epoch ms.
    report_ms: int
    #: CUSTOMER_BODY as stored (serialized JSON), None when the customer sent none.
    customer_body: str | None
    segments: int
    fee_micros: int
    currency: str


class ReportFields(Protocol):
    """What ``build_report`` reads: the fields of ``ReportContent``, on any object.

    The pusher hands over the claimed row itself (``storage.report_ops.DueReport`` has these
    fields), which spares building a ``ReportContent`` per push.
    """

    @property
    def auth_key(self) -> str: ...
    @property
    def serial(self) -> int: ...
    @property
    def sms_uid(self) -> str: ...
    @property
    def sender(self) -> str: ...
    @property
    def country_code(self) -> int: ...
    @property
    def dest_msisdn(self) -> str: ...
    @property
    def sms_state(self) -> int: ...
    @property
    def result_desc(self) -> str: ...
    @property
    def report_ms(self) -> int: ...
    @property
    def customer_body(self) -> str | None: ...
    @property
    def segments(self) -> int: ...
    @property
    def fee_micros(self) -> int: ...
    @property
    def currency(self) -> str: ...


def build_report(report: ReportFields, *, push_ms: int) -> bytes:
    """The SMS_PUSH_REPORT body as bytes (see the module docstring for the shape).

    ``push_ms`` is the push time (TIME); REPORT_TIME comes from ``report.report_ms``. Both are
    written in UTC+8 (SPEC §1).

    One ``orjson.dumps`` per packet: CUSTOMER_BODY goes in as an ``orjson.Fragment`` (its
    stored bytes, verbatim), the two times come from a per-second cache and FEE from a
    per-amount cache.
    """
    serial = report.serial
    if not 1 <= serial <= 65_535:
        raise ValueError(f"SERIAL {serial} outside 1..65535")
    stored = report.customer_body
    return orjson.dumps(
        {
            "METHOD": METHOD,
            "AUTH_KEY": report.auth_key,
            "TYPE": "REQUEST",
            "SERIAL": serial,
            "TIME": _uip_time(push_ms),
            "REPORT_TIME": _uip_time(report.report_ms),
            "SOURCE_MSISDN": report.sender,
            "SMS_UID": report.sms_uid,
            "SMS_RESULT_LIST": [
                {
                    "COUNTRY_CODE": report.country_code,
                    "DEST_MSISDN": report.dest_msisdn,
                    "SMS_STATE": report.sms_state,
                    "RESULT_DESC": report.result_desc,
                }
            ],
            "CUSTOMER_BODY": _EMPTY_BODY if not stored else _body_fragment(stored),
            "SMS_COUNT": report.segments,
            "FEE": _fee(report.fee_micros),
            "CURRENCY": report.currency,
        }
    )


def customer_body_bytes(stored: str | None) -> bytes:
    """The stored CUSTOMER_BODY exactly as received, or ``{}`` (none, or not a JSON object)."""
    if not stored:
        return b"{}"
    raw = stored.strip().encode("utf-8")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return b"{}"
    return raw if isinstance(value, dict) else b"{}"


_EMPTY_BODY = orjson.Fragment(b"{}")


def _body_fragment(stored: str) -> orjson.Fragment:
    raw = customer_body_bytes(stored)
    return _EMPTY_BODY if raw == b"{}" else orjson.Fragment(raw)


@functools.lru_cache(maxsize=4096)
def _fee(micros: int) -> str:
    return format_amount(micros)


def read_answer(status: int, body: bytes) -> tuple[bool, str]:
    """Whether the customer accepted the report, and why not in words for the logs.

    Example::

        read_answer(200, b'{"RESULT_CODE": 1}')   # (True, "OK")
        read_answer(200, b"")                       # (False, "HTTP 200 with an empty body")
    """
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        if not body.strip():
            return False, f"HTTP {status} with an empty body"
        return False, f"HTTP {status} with a body that is not JSON: {_excerpt(body)}"
    if not isinstance(value, dict):
        return False, f"HTTP {status} with JSON that is not an object: {_excerpt(body)}"
    if "RESULT_CODE" not in value:
        return False, f"HTTP {status} without RESULT_CODE: {_excerpt(body)}"
    code = value["RESULT_CODE"]
    if (type(code) is int and code == 1) or code == "1":
        return True, "OK"
    return False, f"HTTP {status} with RESULT_CODE {code!r} {value.get('RESULT_DESC', '')!r}"


def _excerpt(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return repr(text + ("…" if len(body) > limit else ""))


#: UTC+8 (SPEC §1) as seconds east of UTC.
_UIP_OFFSET_S = 8 * 3600
#: Formatted times by epoch second: a push storm formats the same few seconds again and again.
_times: dict[int, str] = {}


def _uip_time(epoch_ms: int) -> str:
    """``format_uip_time`` of an epoch-ms instant, cached per second (same text, ~20× cheaper)."""
    second = epoch_ms // 1000
    text = _times.get(second)
    if text is None:
        if len(_times) >= 4096:
            _times.clear()
        t = time.gmtime(second + _UIP_OFFSET_S)
        text = _times[second] = f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d} {t[3]:02d}:{t[4]:02d}:{t[5]:02d}"
    return text
