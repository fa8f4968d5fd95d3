"""Typed values of the customer SDK: recipients, send and query results, delivery reports.

Everything here is plain data and pure parsing (no I/O), so both clients and the receiver share
it and every rule is a unit test. Wire names follow the CloudSMS Web API v2.4 document; the
values the platform adds (``SMS_COUNT``, ``FEE``, ``CURRENCY``, ``DR_QUERY``) are described in
docs/integration-guide.en.md.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

from cloudsms_client._time import parse_uip_time
from cloudsms_client.codes import ResultCode, SmsState

__all__ = [
    "CloudSMSClientError",
    "QueryResult",
    "Recipient",
    "RecipientLike",
    "RecipientResult",
    "Report",
    "SendResult",
    "as_recipient",
    "result_code",
]


class CloudSMSClientError(Exception):
    """The platform could not be reached, or did not answer with a UIP ANSWER, after retries.

    Refused packets and recipients are *not* errors: they come back as results with their
    RESULT_CODE. This is raised only when there is no answer to return.
    """


@dataclass(frozen=True, slots=True)
class Recipient:
    """One destination: ITU calling code and national number.

    Example::

        Recipient(852, "67000011")
        as_recipient("852-67000011") == Recipient(852, "67000011")
    """

    #: COUNTRY_CODE (UINT on the wire), e.g. 852 for Hong Kong, 86 for mainland China.
    country_code: int
    #: DEST_MSISDN: the national number, digits only (the platform checks it).
    msisdn: str

    def __str__(self) -> str:
        return f"{self.country_code}-{self.msisdn}"

    def to_wire(self) -> dict[str, Any]:
        return {"DEST_MSISDN": self.msisdn, "COUNTRY_CODE": self.country_code}


#: What ``send`` accepts as a recipient.
RecipientLike = Recipient | str | tuple[int | str, str]


def as_recipient(value: RecipientLike) -> Recipient:
    """Normalise ``"852-67000011"``, ``"+852-67000011"``, ``("852", "67000011")``,
    ``(852, "67000011")`` or a ``Recipient``.

    Only the country code is checked here (it must be sent as an integer); the number goes to
    the platform as written, so a malformed number comes back as that recipient's
    Invalid_parameter instead of failing the whole call.
    """
    if isinstance(value, Recipient):
        return value
    if isinstance(value, str):
        cc, sep, msisdn = value.strip().lstrip("+").partition("-")
        if not sep:
            raise ValueError(f"recipient {value!r} is not COUNTRYCODE-NUMBER, e.g. 852-67000011")
        return Recipient(_country_code(cc, value), msisdn.strip())
    if isinstance(value, tuple) and len(value) == 2:
        cc_value, msisdn = value
        return Recipient(_country_code(cc_value, value), str(msisdn))
    raise ValueError(f"not a recipient: {value!r}")


def _country_code(value: object, whole: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"bad country code in {whole!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+").isdigit():
        number = int(value.strip().lstrip("+"))
    else:
        raise ValueError(f"bad country code in {whole!r}")
    if not 1 <= number <= 9999:
        raise ValueError(f"country code out of range in {whole!r}")
    return number


def result_code(value: object) -> ResultCode:
    """A wire RESULT_CODE as a ResultCode; a code this SDK does not know reads as Unknown_error."""
    try:
        return ResultCode(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return ResultCode.UNKNOWN_ERROR


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The platform's decision for one recipient (one DETAIL_LIST entry).

    ``sms_uid`` is ``""`` when the recipient was refused. OK means accepted: the message will be
    sent (or, for LOCAL_REJECTED causes, a REJECTED report follows). ``detail`` is the
    platform's RESULT_DETAIL: why the recipient was refused (or will be LOCAL_REJECTED), in
    one sentence for people; ``""`` when the platform said nothing more. Branch on ``code``.
    """

    country_code: int
    msisdn: str
    code: ResultCode
    desc: str
    sms_uid: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code is ResultCode.OK


@dataclass(frozen=True, slots=True)
class SendResult:
    """The ANSWER to one SMS_SEND_REQUEST packet (at most 200 recipients).

    ``code`` is the packet's top-level RESULT_CODE: OK when at least one recipient was accepted.
    ``recipients`` has one entry per recipient sent; when the packet was refused as a whole
    (Busy, Channel_not_exist …) the platform lists none, and the SDK fills each with the
    packet's code and an empty SMS_UID, so every recipient's fate is always in the result.

    Example::

        [result] = client.send("Your code is 1234", ["852-67000011"])
        if result.ok:
            uid = result.recipients[0].sms_uid
    """

    code: ResultCode
    desc: str
    serial: int
    #: The platform's TIME of the answer (UTC+8 text).
    time: str
    recipients: tuple[RecipientResult, ...]
    #: HTTP requests made for this packet (1 + retries).
    attempts: int = 1
    #: RESULT_DETAIL: why the packet was refused (or why no recipient was accepted), or "".
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code is ResultCode.OK

    @property
    def accepted(self) -> list[RecipientResult]:
        return [r for r in self.recipients if r.ok]

    @property
    def refused(self) -> list[RecipientResult]:
        return [r for r in self.recipients if not r.ok]


def parse_send_answer(
    answer: dict[str, Any], sent: list[Recipient], *, attempts: int = 1
) -> SendResult:
    """Read a decoded SMS_SEND_REQUEST ANSWER for the recipients ``sent`` in its packet."""
    code = result_code(answer.get("RESULT_CODE"))
    desc = str(answer.get("RESULT_DESC") or code.desc)
    why = _detail(answer)
    details = answer.get("DETAIL_LIST")
    results: list[RecipientResult] = []
    if isinstance(details, list) and details:
        for entry in details:
            if not isinstance(entry, dict):
                continue
            entry_code = result_code(entry.get("RESULT_CODE"))
            results.append(
                RecipientResult(
                    country_code=_int_or(entry.get("COUNTRY_CODE"), 0),
                    msisdn=str(entry.get("DEST_MSISDN", "")),
                    code=entry_code,
                    desc=str(entry.get("RESULT_DESC") or entry_code.desc),
                    sms_uid=str(entry.get("SMS_UID") or ""),
                    detail=_detail(entry),
                )
            )
    else:
        results = [RecipientResult(r.country_code, r.msisdn, code, desc, "", why) for r in sent]
    return SendResult(
        code=code,
        desc=desc,
        serial=_int_or(answer.get("SERIAL"), 0),
        time=str(answer.get("TIME", "")),
        recipients=tuple(results),
        attempts=attempts,
        detail=why,
    )


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The current state of one SMS_UID, from a DR_QUERY.

    ``code`` is DB_not_find for a UID the platform does not know *for this customer* (another
    customer's UID reads exactly like an unknown one). The other fields are set only when
    ``code`` is OK.

    Example::

        [state] = client.query(["0MWWBXC46SZZVVU4600000"])
        if state.ok and state.sms_state is SmsState.DELIVERED: ...
    """

    sms_uid: str
    code: ResultCode
    desc: str
    country_code: int | None = None
    msisdn: str | None = None
    sms_state: SmsState | None = None
    state_desc: str = ""
    #: When the platform accepted the message (UTC+8 text).
    submit_time: str = ""
    #: When the final state was reported (UTC+8 text), "" while not final.
    report_time: str = ""
    sms_count: int | None = None
    fee: decimal.Decimal | None = None
    currency: str | None = None
    #: RESULT_DETAIL of the query's answer when the query itself was refused, else "".
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code is ResultCode.OK


def parse_query_answer(answer: dict[str, Any], asked: list[str]) -> list[QueryResult]:
    """Read a decoded DR_QUERY ANSWER; one result per asked UID, in the order asked."""
    code = result_code(answer.get("RESULT_CODE"))
    desc = str(answer.get("RESULT_DESC") or code.desc)
    entries = answer.get("SMS_RESULT_LIST")
    if code is not ResultCode.OK or not isinstance(entries, list):
        why = _detail(answer)
        return [QueryResult(uid, code, desc, detail=why) for uid in asked]
    by_uid = {e.get("SMS_UID"): e for e in entries if isinstance(e, dict)}
    results = []
    for uid in asked:
        entry = by_uid.get(uid)
        if entry is None:
            results.append(QueryResult(uid, ResultCode.DB_NOT_FIND, ResultCode.DB_NOT_FIND.desc))
            continue
        entry_code = result_code(entry.get("RESULT_CODE"))
        results.append(
            QueryResult(
                sms_uid=uid,
                code=entry_code,
                desc=str(entry.get("RESULT_DESC") or entry_code.desc),
                country_code=_int_or(entry.get("COUNTRY_CODE"), None),
                msisdn=_str_or_none(entry.get("DEST_MSISDN")),
                sms_state=_state_or_none(entry.get("SMS_STATE")),
                state_desc=str(entry.get("STATE_DESC") or ""),
                submit_time=str(entry.get("SUBMIT_TIME") or ""),
                report_time=str(entry.get("REPORT_TIME") or ""),
                sms_count=_int_or(entry.get("SMS_COUNT"), None),
                fee=read_decimal(entry.get("FEE")),
                currency=_str_or_none(entry.get("CURRENCY")),
            )
        )
    return results


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One delivery report (SMS_PUSH_REPORT) as the receiver hands it to your callback.

    Example::

        async def on_report(report: Report) -> None:
            if report.sms_state is SmsState.DELIVERED:
                await mark_delivered(report.sms_uid, report.customer_body.get("order"))
    """

    sms_uid: str
    country_code: int
    dest_msisdn: str
    sms_state: SmsState
    #: The state's name (``DELIVERED`` …) or ``LOCAL_REJECTED`` (error 60).
    result_desc: str
    #: When the carrier (or the platform) reported the state: UTC+8 text, "" if absent.
    report_time: str
    #: The sender the message went out with (SOURCE_MSISDN).
    source_msisdn: str
    #: CUSTOMER_BODY of the send request, unchanged; {} when none was sent.
    customer_body: dict[str, Any] = field(default_factory=dict)
    #: Segments sent (SMS_COUNT), the charge (FEE, exact) and its CURRENCY; None if absent.
    sms_count: int | None = None
    fee: decimal.Decimal | None = None
    currency: str | None = None
    #: The push's own SERIAL (1..65535, per customer, wrapping) and TIME (UTC+8 text).
    serial: int = 0
    time: str = ""

    @property
    def reported_at(self) -> dt.datetime | None:
        """REPORT_TIME as an aware UTC datetime, or None when absent or unreadable."""
        try:
            return parse_uip_time(self.report_time)
        except ValueError:
            return None

    @property
    def final(self) -> bool:
        """Whether this state is final (the platform pushes at most one final state per UID)."""
        return self.sms_state not in (SmsState.ENROUTE, SmsState.ACCEPTED, SmsState.IDLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One inbound message (SMS_PUSH_MO, guide §14) as the receiver hands it to ``on_mo``.

    Example::

        async def on_mo(mo: InboundMessage) -> None:
            if mo.keyword == "YES":
                await confirm(mo.source_msisdn, mo_uid=mo.mo_uid)   # MO_UID: keep it once
    """

    mo_uid: str
    #: The handset's number as the carrier gave it (international digits).
    source_msisdn: str
    #: Your number it was sent to.
    dest_msisdn: str
    content: str
    #: The first word, upper-cased.
    keyword: str = ""
    #: Parts it arrived in (SMS_COUNT); when the platform received it (UTC+8 text).
    sms_count: int = 1
    receive_time: str = ""
    #: The push's own SERIAL and TIME (UTC+8 text).
    serial: int = 0
    time: str = ""


def _detail(packet: dict[str, Any]) -> str:
    """RESULT_DETAIL, the platform's sentence on why (absent from the v2.4 document: "")."""
    value = packet.get("RESULT_DETAIL")
    return value if isinstance(value, str) else ""


def _int_or(value: object, default: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _state_or_none(value: object) -> SmsState | None:
    try:
        return SmsState(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def read_decimal(value: object) -> decimal.Decimal | None:
    """FEE is sent as a decimal string; str() keeps an int (or a stray float) readable too."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return None
    return amount if amount.is_finite() else None
