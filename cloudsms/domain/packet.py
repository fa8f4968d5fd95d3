"""Reading a UIP SMS_SEND_REQUEST packet: structure, types and limits (SPEC §1–3).

Strategy: ``read_send_request`` turns a decoded JSON value into a ``SendRequest`` or raises
``PacketError`` carrying the top-level RESULT_CODE. Per-recipient problems are not packet errors:
recipients are checked later, one by one (``cloudsms.api.accept``), so one bad number does not
sink a 200-recipient packet. Nothing here touches the store or the clock except through the
``now`` argument, so every rule is a plain unit test.

Order of checks, chosen so that an unauthenticated caller learns nothing about the rest:
envelope (METHOD, TYPE, SERIAL, TIME) → AUTH_KEY → (the API checks the key, source IP and client
certificate) → VERSION → the other fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.content import content_bytes
from cloudsms.domain.timefmt import parse_uip_time

SUPPORTED_VERSIONS = frozenset({"2021-01-01"})
SEND_METHOD = "SMS_SEND_REQUEST"
MAX_RECIPIENTS = 200
#: LMAX of the document's tables (bytes, counted by the SMS_CONTENT rule for non-ASCII text).
LMAX_TIME = 32
LMAX_AUTH_KEY = 128
LMAX_ROUTE_ID = 255
LMAX_ORIGINAL_ADDR = 32
#: Longest sender ID a carrier can be given: SMPP 3.4 §5.2.8, source_addr is a C-Octet String
#: of at most 21 octets with its NUL. A longer ORIGINAL_ADDR (the document allows 32) could
#: never be sent, so it is refused here rather than charged and failed later.
MAX_SENDER = 20
LMAX_SIGNATURE = 64
LMAX_CUSTOMER_BODY = 255


class PacketError(Exception):
    """The packet as a whole is refused with ``code``; ``reason`` says why, in one sentence.

    The reason goes to the log and to the ANSWER's RESULT_DETAIL, so it names the field and,
    briefly, what was wrong with it; it never echoes an AUTH_KEY.
    """

    def __init__(self, code: ResultCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Envelope:
    """The four fields every UIP packet carries (SPEC §1)."""

    method: str
    serial: int
    time: str


@dataclass(slots=True, kw_only=True)
class SendRequest:
    envelope: Envelope
    auth_key: str
    #: The raw MULTI_MSISDN_LIST entries; each is checked on its own.
    recipients: list[Any]
    content: str
    route_id: str
    version: str
    original_addr: str | None
    signature: str | None
    signature_type: int | None
    priority: int
    #: CUSTOMER_BODY re-serialized compactly (orjson keeps key order), or None.
    customer_body: str | None
    #: SMS_SEND_TIME as aware UTC, None for "now".
    send_at: dt.datetime | None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def show(value: object, limit: int = 40) -> str:
    """A customer's value as a reason quotes it: JSON-like, cut to ``limit`` characters."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def serial_of(packet: object) -> int:
    """The SERIAL to echo: the packet's own when it is a valid one, else 0 (document: 1..65535)."""
    if isinstance(packet, dict):
        serial = packet.get("SERIAL")
        if isinstance(serial, int) and not isinstance(serial, bool) and 1 <= serial <= 65535:
            return serial
    return 0


def read_envelope(packet: object, methods: frozenset[str] = frozenset({SEND_METHOD})) -> Envelope:
    """Check METHOD (one of ``methods``), TYPE, SERIAL and TIME of the decoded JSON body."""
    if not isinstance(packet, dict) or not packet:
        raise PacketError(ResultCode.EMPTY_DATA, "body is not a non-empty JSON object")
    for name in ("METHOD", "TYPE", "SERIAL", "TIME"):
        if packet.get(name) is None:
            raise PacketError(ResultCode.LOST_INFO, f"{name} is missing")
    method = packet["METHOD"]
    if not isinstance(method, str) or method not in methods:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"METHOD {show(method)} is not one of {', '.join(sorted(methods))}",
        )
    if packet["TYPE"] != "REQUEST":
        raise PacketError(
            ResultCode.INVALID_PARAMETER, f'TYPE must be "REQUEST", not {show(packet["TYPE"])}'
        )
    serial = packet["SERIAL"]
    if not _is_int(serial) or not 1 <= serial <= 65535:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"SERIAL must be a JSON integer 1..65535, not {show(serial)}",
        )
    time_text = packet["TIME"]
    if not isinstance(time_text, str) or not time_text or len(time_text) > LMAX_TIME:
        got = f"{len(time_text)} characters" if isinstance(time_text, str) else show(time_text)
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"TIME must be a string of 1..{LMAX_TIME} characters, not {got}",
        )
    return Envelope(method=method, serial=serial, time=time_text)


def key_owner(packet: object, lookup: Callable[[str], Any]) -> str | None:
    """The name of the customer whose AUTH_KEY ``packet`` carries, for logging a refusal.

    Only the log uses it: a packet refused before authentication is answered the same whoever
    sent it.
    """
    key = packet.get("AUTH_KEY") if isinstance(packet, dict) else None
    customer = lookup(key) if isinstance(key, str) else None
    return None if customer is None else str(customer.name)


def read_auth_key(packet: dict[str, Any]) -> str:
    key = packet.get("AUTH_KEY")
    if key is None:
        raise PacketError(ResultCode.LOST_INFO, "AUTH_KEY is missing")
    if not isinstance(key, str):
        raise PacketError(ResultCode.INVALID_PARAMETER, "AUTH_KEY must be a string")
    return key


def _optional_str(packet: dict[str, Any], name: str, lmax: int, *, ascii_only: bool) -> str | None:
    value = packet.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PacketError(ResultCode.INVALID_PARAMETER, f"{name} must be a string")
    if ascii_only:
        if len(value) > lmax or any(not 0x20 <= ord(c) <= 0x7E for c in value):
            raise PacketError(
                ResultCode.INVALID_PARAMETER, f"{name}: at most {lmax} printable ASCII characters"
            )
    elif content_bytes(value) > lmax:
        raise PacketError(ResultCode.INVALID_PARAMETER, f"{name} is over {lmax} bytes")
    return value or None


def _optional_uint(packet: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = packet.get(name)
    if value is None:
        return None
    if not _is_int(value) or not low <= value <= high:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"{name} must be a JSON integer {low}..{high}, not {show(value)}",
        )
    return int(value)


def read_send_request(
    packet: dict[str, Any], envelope: Envelope, *, now: dt.datetime, max_schedule: dt.timedelta
) -> SendRequest:
    """Check every field of an SMS_SEND_REQUEST after its envelope and AUTH_KEY passed."""
    version = packet.get("VERSION")
    if version is None:
        raise PacketError(ResultCode.LOST_INFO, "VERSION is missing")
    if not isinstance(version, str):
        raise PacketError(ResultCode.INVALID_PARAMETER, "VERSION must be a string")
    if version not in SUPPORTED_VERSIONS:
        raise PacketError(
            ResultCode.INVALID_VERSION,
            f"VERSION {show(version)} is not supported; send {min(SUPPORTED_VERSIONS)}",
        )

    recipients = packet.get("MULTI_MSISDN_LIST")
    if recipients is None:
        raise PacketError(ResultCode.LOST_INFO, "MULTI_MSISDN_LIST is missing")
    if isinstance(recipients, dict):
        # The document's own Java example sends one object instead of a list of one.
        recipients = [recipients]
    if not isinstance(recipients, list) or not recipients:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            "MULTI_MSISDN_LIST must be a non-empty list of {COUNTRY_CODE, DEST_MSISDN} objects",
        )
    if len(recipients) > MAX_RECIPIENTS:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"MULTI_MSISDN_LIST has {len(recipients)} recipients; at most {MAX_RECIPIENTS}"
            " per packet",
        )

    content = packet.get("SMS_CONTENT")
    if not isinstance(content, str) or not content:
        problem = "missing" if content is None else "empty" if content == "" else "not a string"
        raise PacketError(ResultCode.INVALID_CONTEXT, f"SMS_CONTENT is {problem}")

    route_id = packet.get("ROUTE_ID")
    if route_id is None:
        raise PacketError(ResultCode.LOST_INFO, "ROUTE_ID is missing")
    if not isinstance(route_id, str) or not route_id or len(route_id) > LMAX_ROUTE_ID:
        raise PacketError(ResultCode.INVALID_PARAMETER, "ROUTE_ID must be 1..255 characters")

    original_addr = _optional_str(packet, "ORIGINAL_ADDR", LMAX_ORIGINAL_ADDR, ascii_only=True)
    if original_addr is not None and len(original_addr) > MAX_SENDER:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"ORIGINAL_ADDR has {len(original_addr)} characters; carriers take at most"
            f" {MAX_SENDER} (SMPP source_addr)",
        )
    signature = _optional_str(packet, "SIGNATURE", LMAX_SIGNATURE, ascii_only=False)
    signature_type = _optional_uint(packet, "SIGNATURE_TYPE", 1, 5)
    priority = _optional_uint(packet, "PRIORITY", 0, 1) or 0

    customer_body: str | None = None
    body = packet.get("CUSTOMER_BODY")
    if body is not None:
        if not isinstance(body, dict):
            raise PacketError(ResultCode.INVALID_PARAMETER, "CUSTOMER_BODY must be a JSON object")
        serialized = orjson.dumps(body)
        if len(serialized) > LMAX_CUSTOMER_BODY:
            raise PacketError(
                ResultCode.INVALID_PARAMETER,
                f"CUSTOMER_BODY is {len(serialized)} bytes as compact JSON; at most"
                f" {LMAX_CUSTOMER_BODY}",
            )
        customer_body = serialized.decode()

    return SendRequest(
        envelope=envelope,
        auth_key=str(packet["AUTH_KEY"]),
        recipients=recipients,
        content=content,
        route_id=route_id,
        version=version,
        original_addr=original_addr,
        signature=signature,
        signature_type=signature_type,
        priority=priority,
        customer_body=customer_body,
        send_at=_read_send_time(packet.get("SMS_SEND_TIME"), now, max_schedule),
    )


def _read_send_time(
    value: object, now: dt.datetime, max_schedule: dt.timedelta
) -> dt.datetime | None:
    """SMS_SEND_TIME: UTC+8 wall time; empty or past means now; too far ahead is refused."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"SMS_SEND_TIME must be a string YYYY-MM-DD HH:MM:SS in UTC+8, not {show(value)}",
        )
    try:
        moment = parse_uip_time(value)
    except ValueError as exc:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"SMS_SEND_TIME must be YYYY-MM-DD HH:MM:SS in UTC+8, not {show(value)}",
        ) from exc
    if moment <= now:
        return None
    if moment - now > max_schedule:
        raise PacketError(
            ResultCode.INVALID_PARAMETER,
            f"SMS_SEND_TIME {value} is more than {_days(max_schedule)} ahead",
        )
    return moment


def _days(span: dt.timedelta) -> str:
    days = span / dt.timedelta(days=1)
    return f"{days:g} day" + ("" if days == 1 else "s")
