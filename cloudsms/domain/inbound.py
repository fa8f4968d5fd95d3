"""Inbound messages (MO): reading a carrier's deliver_sm, reassembly, routing rules, SMS_PUSH_MO.

Strategy: a carrier's deliver_sm (or data_sm) that is not a receipt (:func:`is_mobile_originated`)
is read into an :class:`InboundPart` — addresses, data_coding, the raw user data and, when it is
one part of a concatenated message, its (reference, total, sequence) from a UDH 8/16-bit element
or the SAR TLVs. Parts keep their *bytes* until the message is whole (:func:`assemble`): a UCS-2
character or a GSM escape may straddle two parts, so only the joined bytes are decoded.

The store applies the rules here in the transaction that keeps the message (``storage/
inbound_ops.py``), before the deliver_sm_resp leaves:

- **Deduplication** (:func:`dedup_key`): a carrier that lost our deliver_sm_resp sends the same
  deliver_sm again. Its key is the connector, source, destination, the concatenation reference
  and total (or the user_message_reference TLV) and a digest of the text; a message with the same
  key received within ``mo_dedup_window_s`` is the same message. A genuine second "YES" sent
  within the window is the price (docs/decisions.md, "Inbound messages").
- **Routing** (:func:`choose_route`): an inbound number with the MO's first word as keyword,
  else the number without keyword, else the customer that last sent to the MO's source from this
  destination as sender within ``mo_reply_window_s``, else ``mo_default_customer``, else unrouted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.opt_out import OptChange
from cloudsms.domain.packet import PacketError
from cloudsms.domain.timefmt import format_uip_time
from cloudsms.smpp.constants import EsmClass
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import DataSm, DeliverSm
from cloudsms.smpp.receipt import receipt_from_pdu
from cloudsms.smpp.udh import split_udh

METHOD: Final = "SMS_PUSH_MO"
#: Most parts a concatenated MO may announce (a UDH allows 255; nobody sends more than this).
MAX_PARTS: Final = 32

RoutedBy = Literal["keyword", "number", "reply", "default", "unrouted"]
_MESSAGE_TYPE_MASK: Final = int(EsmClass.MESSAGE_TYPE_MASK)


def is_mobile_originated(pdu: DeliverSm | DataSm) -> bool:
    """True for a deliver_sm / data_sm that is a message, not a receipt (SMPP 3.4 §5.2.12).

    A receipt or acknowledgement message type (esm_class bits 2-5), a receipted_message_id TLV,
    or text that parses as an Appendix B receipt all say receipt.
    """
    if pdu.esm_class & _MESSAGE_TYPE_MASK or pdu.receipted_message_id:
        return False
    return receipt_from_pdu(pdu) is None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundPart:
    """One deliver_sm of an MO, read but not decoded (see the module docstring)."""

    source: str
    destination: str
    data_coding: int
    #: User data without its UDH.
    data: bytes
    #: (reference, total, sequence) of a concatenated part; None for a whole message.
    concat: tuple[int, int, int] | None = None
    #: "udh8", "udh16" or "sar" (part of the dedup key: references of different kinds differ).
    concat_kind: str = ""
    #: The user_message_reference TLV (§5.3.2.17), when the carrier sets it.
    user_reference: int | None = None


class BadInbound(ValueError):
    """A deliver_sm that cannot be an MO part (its concatenation fields are inconsistent)."""


def read_inbound(pdu: DeliverSm | DataSm) -> InboundPart:
    """The MO part a deliver_sm / data_sm carries; BadInbound when its concatenation is broken.

    >>> p = read_inbound(DeliverSm(sequence_number=1, source_addr="85291234567",
    ...                            destination_addr="1234", short_message=b"HELLO"))
    >>> p.source, p.destination, p.data, p.concat
    ('85291234567', '1234', b'HELLO', None)
    """
    payload = pdu.payload
    concat: tuple[int, int, int] | None = None
    kind = ""
    if pdu.esm_class & EsmClass.UDHI:
        found, payload = split_udh(payload)
        if found is not None:
            ref, total, seq, sixteen = found
            concat, kind = (ref, total, seq), "udh16" if sixteen else "udh8"
    elif pdu.sar is not None:
        concat, kind = pdu.sar, "sar"
    if concat is not None:
        _, total, seq = concat
        if total == 1:
            concat, kind = None, ""
        elif not 1 <= seq <= total or total > MAX_PARTS:
            raise BadInbound(f"part {seq} of {total}: parts are 1..total, at most {MAX_PARTS}")
    return InboundPart(
        source=pdu.source_addr,
        destination=pdu.destination_addr,
        data_coding=pdu.data_coding,
        data=payload,
        concat=concat,
        concat_kind=kind,
        user_reference=pdu.user_message_reference,
    )


def assemble(parts: list[tuple[int, bytes]], data_coding: int) -> str:
    """The text of a whole MO: its parts' bytes joined in sequence order, then decoded.

    >>> assemble([(2, b"\\x00!"), (1, b"\\x4f\\x60\\x59\\x7d")], 8)
    '你好!'
    """
    return decode_text(b"".join(data for _, data in sorted(parts)), data_coding)


def number_key(address: str) -> str:
    """An address as the inbound-number table and reply matching compare it: digits only
    (``+852 3000-1234`` → ``85230001234``); an alphanumeric address stays as it is, upper-cased.
    """
    digits = "".join(c for c in address if c.isdigit())
    stripped = address.strip().lstrip("+")
    if stripped and all(c.isdigit() or c in " -()" for c in stripped):
        return digits.removeprefix("00") if digits.startswith("00") else digits
    return address.strip().upper()


def first_word(text: str) -> str:
    """The MO's keyword candidate: its first word, upper-cased (shared short codes, opt-out)."""
    words = text.split(maxsplit=1)
    return words[0].upper()[:32] if words else ""


def dedup_key(connector_id: int, part: InboundPart, text: str) -> str:
    """The key two deliveries of the same MO share (see the module docstring), 64 hex digits."""
    ref = (
        f"{part.concat_kind}:{part.concat[0]}/{part.concat[1]}"
        if part.concat is not None
        else f"umr:{part.user_reference}"
        if part.user_reference is not None
        else ""
    )
    raw = "\x00".join(
        (str(connector_id), number_key(part.source), number_key(part.destination), ref, text)
    )
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class InboundNumber:
    """A long number or short code given to a customer (optionally for one keyword only)."""

    id: int
    number: str
    #: "" for every MO to the number; else the first word (upper case) it must start with.
    keyword: str
    customer_id: int
    customer: str
    created_ms: int = 0


def choose_route(
    keyword: str,
    by_number: dict[str, int],
    reply_customer: int | None,
    default_customer: int | None,
) -> tuple[int | None, RoutedBy]:
    """The customer an MO goes to and why; ``by_number`` maps keyword ("" = any) → customer.

    >>> choose_route("STOP", {"": 7, "STOP": 9}, None, None)
    (9, 'keyword')
    >>> choose_route("HI", {}, None, 3)
    (3, 'default')
    """
    if keyword and keyword in by_number:
        return by_number[keyword], "keyword"
    if "" in by_number:
        return by_number[""], "number"
    if reply_customer is not None:
        return reply_customer, "reply"
    if default_customer is not None:
        return default_customer, "default"
    return None, "unrouted"


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRecord:
    """A stored MO, as operators and tests read it."""

    id: int
    mo_uid: str
    connector_id: int
    source: str
    destination: str
    text: str
    data_coding: int
    parts: int
    keyword: str
    customer_id: int | None
    routed_by: str
    received_ms: int
    #: "pending", "done", "failed" (given up) or "unrouted".
    push_state: str
    attempts: int = 0
    last_error: str = ""
    #: Who delivers it: "http" (SMS_PUSH_MO) or "smpp" (deliver_sm on the customer's SMPP
    #: session), decided when it is stored (docs/decisions.md "MOs over SMPP").
    channel: str = "http"


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundOutcome:
    """What storing one deliver_sm did: ``stored`` (a whole MO), ``waiting`` (a part kept until
    the others come) or ``duplicate`` (already had it). ``record`` is set when ``stored``."""

    status: Literal["stored", "waiting", "duplicate"]
    record: InboundRecord | None = None
    #: The opt-out keyword a stored MO carried, applied to its customer's list in the same
    #: transaction (``domain.opt_out.opt_change``); None: not a keyword, or not routed.
    opt: OptChange | None = None


@dataclass(frozen=True, slots=True)
class InboundArrival:
    """One carrier deliver_sm of an MO, as the intake hands a batch of them to the store."""

    connector_id: int
    part: InboundPart
    mo_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DueMo:
    """A claimed MO push with everything its packet needs."""

    id: int
    mo_uid: str
    customer_id: int
    auth_key: str
    serial: int
    #: mo_url, else the customer's report callback_url (docs/decisions.md); None: neither.
    callback_url: str | None
    callback_ca_pem: str | None
    source: str
    destination: str
    text: str
    parts: int
    keyword: str
    received_ms: int
    created_ms: int
    attempts: int
    next_attempt_ms: int


def build_mo_push(mo: DueMo, *, push_ms: int) -> bytes:
    """The SMS_PUSH_MO body: the UIP envelope of SMS_PUSH_REPORT around one inbound message.

    ``SOURCE_MSISDN`` is the handset's number as the carrier sent it (digits, international
    form when the carrier gives it so), ``DEST_MSISDN`` the customer's number it was sent to.
    """
    if not 1 <= mo.serial <= 65_535:
        raise ValueError(f"SERIAL {mo.serial} outside 1..65535")
    return orjson.dumps(
        {
            "METHOD": METHOD,
            "AUTH_KEY": mo.auth_key,
            "TYPE": "REQUEST",
            "SERIAL": mo.serial,
            "TIME": format_uip_time(_utc(push_ms)),
            "RECEIVE_TIME": format_uip_time(_utc(mo.received_ms)),
            "MO_UID": mo.mo_uid,
            "SOURCE_MSISDN": mo.source,
            "DEST_MSISDN": mo.destination,
            "SMS_CONTENT": mo.text,
            "KEYWORD": mo.keyword,
            "SMS_COUNT": mo.parts,
        }
    )


def _utc(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


# -- MO_QUERY: a customer pulls its inbound messages (extension, guide §14) --------------------

MO_QUERY_METHOD: Final = "MO_QUERY"
#: Most inbound messages one MO_QUERY answers.
MO_QUERY_MAX: Final = 200


def read_mo_query(packet: dict[str, Any]) -> tuple[str | None, int]:
    """(SINCE_MO_UID or None, LIMIT) of an MO_QUERY; PacketError when malformed.

    >>> read_mo_query({}), read_mo_query({"SINCE_MO_UID": "0MW1", "LIMIT": 5})
    ((None, 100), ('0MW1', 5))
    """
    since = packet.get("SINCE_MO_UID")
    if since is not None and not (isinstance(since, str) and 0 < len(since) <= 32):
        raise PacketError(ResultCode.INVALID_PARAMETER, "SINCE_MO_UID must be an MO_UID")
    limit = packet.get("LIMIT", 100)
    if not (isinstance(limit, int) and not isinstance(limit, bool)) or not (
        1 <= limit <= MO_QUERY_MAX
    ):
        raise PacketError(ResultCode.INVALID_PARAMETER, f"LIMIT must be 1..{MO_QUERY_MAX}")
    return since or None, limit


def mo_entry(mo: InboundRecord) -> dict[str, Any]:
    """One MO_LIST entry of an MO_QUERY answer: the fields of its SMS_PUSH_MO."""
    return {
        "MO_UID": mo.mo_uid,
        "RECEIVE_TIME": format_uip_time(_utc(mo.received_ms)),
        "SOURCE_MSISDN": mo.source,
        "DEST_MSISDN": mo.destination,
        "SMS_CONTENT": mo.text,
        "KEYWORD": mo.keyword,
        "SMS_COUNT": mo.parts,
    }
