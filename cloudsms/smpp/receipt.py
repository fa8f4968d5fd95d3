"""Delivery receipts: parse them, map their state, and match their message ids.

Strategy: SMPP 3.4 Appendix B gives the de-facto text format of a receipt in short_message::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD
    err:E text: . . . . . . . . .

and §5.3.2.12 / §5.3.2.35 / §5.3.2.31 add TLVs (receipted_message_id, message_state,
network_error_code) that carry the same facts in binary. Carriers vary everything the appendix
leaves open, so the text parser finds ``key:`` markers anywhere (any case, any order, "submit
date", "submit_date" or "submitdate", values up to the next marker), keeps unknown keys in
``extra``, accepts 10- or 12-digit dates, and treats ``text:`` as running to the end.
:func:`receipt_from_pdu` prefers the TLVs and falls back on the text field by field.

Message ids are the other half of the problem: a carrier may answer submit_sm_resp with
``message_id`` "0A1B2C" and then send the receipt with ``id:662316`` (the same number in
decimal), or change case or leading zeros. :func:`normalise_message_id` turns either form into
one key under the connector's configured mode (see :data:`MESSAGE_ID_MODES`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

from cloudsms.smpp.constants import EsmClass, SmppMessageState
from cloudsms.smpp.pdu import DataSm, DeliverSm, Pdu

#: The receipt ``stat`` words of SMPP 3.4 Appendix B (the SMS_STATE each means to a customer is
#: the domain's business: ``cloudsms.domain.dlr.STAT_TO_SMS_STATE``).
STAT_WORDS: Final = frozenset(
    {"ENROUTE", "DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"}
)

#: Spellings seen in the wild for the eight states (upper-cased before lookup).
_STAT_ALIASES: Final[dict[str, str]] = {
    "DELIVERED": "DELIVRD",
    "DELIVER": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
    "REJECT": "REJECTD",
    "EXPIRE": "EXPIRED",
    "DELETE": "DELETED",
    "EN_ROUTE": "ENROUTE",
    "UNKNOWNN": "UNKNOWN",
}

#: message_state TLV / query_sm_resp value (§5.2.28) → the receipt stat word.
MESSAGE_STATE_TO_STAT: Final[dict[int, str]] = {
    SmppMessageState.ENROUTE: "ENROUTE",
    SmppMessageState.DELIVERED: "DELIVRD",
    SmppMessageState.EXPIRED: "EXPIRED",
    SmppMessageState.DELETED: "DELETED",
    SmppMessageState.UNDELIVERABLE: "UNDELIV",
    SmppMessageState.ACCEPTED: "ACCEPTD",
    SmppMessageState.UNKNOWN: "UNKNOWN",
    SmppMessageState.REJECTED: "REJECTD",
}

#: Final receipt stat words: no later receipt is expected for the message.
FINAL_STATS: Final = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "REJECTD"})


@dataclass(slots=True, kw_only=True)
class Receipt:
    """A delivery receipt, whatever form it arrived in.

    Made once per receipt on the carrier hot path, so: not frozen (a frozen dataclass's
    ``__init__`` costs several times a plain one's; nothing changes a receipt once made), and its
    dates are kept as received and parsed only when read (the dispatcher never reads them).
    """

    #: The SMSC message id, as the carrier wrote it (see :func:`normalise_message_id`).
    message_id: str
    #: One of DELIVRD EXPIRED DELETED UNDELIV ACCEPTD UNKNOWN REJECTD ENROUTE.
    state: str
    #: The ``err`` field as text, or the network_error_code TLV's error code as 3+ digits when
    #: that TLV is present (it wins over the text); None if neither.
    error_code: str | None = None
    #: ``sub`` and ``dlvrd``: number of messages submitted / delivered (Appendix B).
    submitted: int | None = None
    delivered: int | None = None
    #: ``submit date`` and ``done date`` as received (see :attr:`submit_date`).
    submit_date_text: str = ""
    done_date_text: str = ""
    #: The ``text`` field (first characters of the message), possibly empty.
    text: str = ""
    #: The stat value as received, before normalisation.
    raw_state: str = ""
    #: Fields the parser did not recognise, as (lower-cased key, value).
    extra: tuple[tuple[str, str], ...] = ()
    #: The network_error_code TLV (§5.3.2.31) as (network type, error code), when present.
    network_error_code: tuple[int, int] | None = None

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATS

    @property
    def submit_date(self) -> datetime | None:
        """Carrier-local time (the receipt carries no time zone); None when absent or invalid."""
        return parse_receipt_date(self.submit_date_text)

    @property
    def done_date(self) -> datetime | None:
        """Carrier-local time, as :attr:`submit_date`."""
        return parse_receipt_date(self.done_date_text)


# A key is a word (or "submit date"/"done date" with a space, underscore or nothing) followed by
# a colon, at the start or after whitespace. Values run to the next key.
_KEY = re.compile(
    r"(?:^|(?<=\s))(submit[ _]?date|done[ _]?date|[a-z][a-z_]*)[ \t]*:",
    re.IGNORECASE,
)
_ID_OK = re.compile(r"[\x21-\x7e]+")
_DATE = re.compile(r"\d{10}(?:\d{2})?")

# Appendix B exactly as most SMSCs (and our simulator) write it: every key once, lower case, in
# the appendix's order, one space apart, values without blanks. Nearly every receipt a carrier
# sends has this shape, so one match of this regex parses it; any other text goes through the
# general key scan below, which gives the same fields for these texts (a property test checks
# it) at several times the cost.
_STANDARD = re.compile(
    r"id:([\x21-\x7e]+) sub:([0-9]+) dlvrd:([0-9]+) submit date:([0-9]{10}(?:[0-9]{2})?)"
    r" done date:([0-9]{10}(?:[0-9]{2})?) stat:([A-Za-z_]+) err:([\x21-\x7e]*) text:(.*)",
    re.DOTALL,
)


def normalise_stat(raw: str) -> str:
    """The Appendix B stat word for ``raw`` ("delivered" → "DELIVRD"); "UNKNOWN" if unknown."""
    word = raw.strip().upper()
    word = _STAT_ALIASES.get(word, word)
    return word if word in STAT_WORDS else "UNKNOWN"


# Cached: a receipt's dates are to the minute (or second), so a busy link sees the same few
# strings over and over, and a datetime is immutable.
@functools.lru_cache(maxsize=1024)
def parse_receipt_date(raw: str) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss (Appendix B; the seconds are a common extension)."""
    raw = raw.strip()
    if not _DATE.fullmatch(raw):
        return None
    try:
        return datetime(
            2000 + int(raw[0:2]),
            int(raw[2:4]),
            int(raw[4:6]),
            int(raw[6:8]),
            int(raw[8:10]),
            int(raw[10:12]) if len(raw) == 12 else 0,
        )
    except ValueError:
        return None


def _int_or_none(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


class _Fields(NamedTuple):
    """What the text of a receipt says, before the TLVs are considered."""

    message_id: str
    raw_state: str
    error_code: str | None
    submitted: int | None
    delivered: int | None
    submit_date: str
    done_date: str
    text: str
    extra: tuple[tuple[str, str], ...]


def _parse_fields(text: str) -> _Fields | None:
    """The fields of an Appendix B text; None when there is no valid ``id``."""
    text = text.replace("\0", " ")
    m = _STANDARD.fullmatch(text)
    if m is not None:
        message_id, sub, dlvrd, submit_date, done_date, stat, err, rest = m.groups()
        return _Fields(
            message_id=message_id,
            raw_state=stat,
            error_code=err or None,
            submitted=int(sub),
            delivered=int(dlvrd),
            submit_date=submit_date,
            done_date=done_date,
            text=rest.strip(),
            extra=(),
        )
    return _scan_fields(text)


def _scan_fields(text: str) -> _Fields | None:
    """The general parser: ``key:`` markers anywhere, in any case and order (module doc)."""
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    matches = list(_KEY.finditer(text))
    for i, m in enumerate(matches):
        key = m.group(1).lower().replace(" ", "").replace("_", "")
        if key == "text":
            fields["text"] = text[m.end() :].strip()
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end() : end].strip()
        if key in ("id", "sub", "dlvrd", "submitdate", "donedate", "stat", "err"):
            fields.setdefault(key, value)
        else:
            extra.append((m.group(1).lower(), value))
    message_id = fields.get("id", "")
    if not _ID_OK.fullmatch(message_id):
        return None
    return _Fields(
        message_id=message_id,
        raw_state=fields.get("stat", ""),
        error_code=fields.get("err") or None,
        submitted=_int_or_none(fields.get("sub", "")),
        delivered=_int_or_none(fields.get("dlvrd", "")),
        submit_date=fields.get("submitdate", ""),
        done_date=fields.get("donedate", ""),
        text=fields.get("text", ""),
        extra=tuple(extra),
    )


def parse_receipt_text(text: str) -> Receipt | None:
    """Parse the Appendix B text form; None when there is no ``id`` (then it is no receipt).

    >>> r = parse_receipt_text("id:0A1B sub:001 dlvrd:001 submit date:2501021504 "
    ...                        "done date:2501021505 stat:DELIVRD err:000 text:hello")
    >>> r.message_id, r.state, r.is_final, r.done_date.minute
    ('0A1B', 'DELIVRD', True, 5)
    """
    f = _parse_fields(text)
    if f is None:
        return None
    return Receipt(
        message_id=f.message_id,
        state=normalise_stat(f.raw_state),
        error_code=f.error_code,
        submitted=f.submitted,
        delivered=f.delivered,
        submit_date_text=f.submit_date,
        done_date_text=f.done_date,
        text=f.text,
        raw_state=f.raw_state,
        extra=f.extra,
    )


#: esm_class bits 5-2, the message type (§5.2.12), as a plain int: ``&`` on the IntFlag
#: member would build a flag object per receipt.
_MESSAGE_TYPE_MASK: Final = int(EsmClass.MESSAGE_TYPE_MASK)


def receipt_from_pdu(pdu: Pdu) -> Receipt | None:
    """The receipt a deliver_sm or data_sm carries, or None (an MO message, or no message id).

    It is a receipt when esm_class has a receipt/acknowledgement message type (§5.2.12), or
    the receipted_message_id TLV is present, or the text starts like one (``id:``), since some
    carriers forget the esm_class bits. TLVs win over the text: receipted_message_id
    (§5.3.2.12) for the id, message_state (§5.3.2.35) for the state, network_error_code
    (§5.3.2.31) for the error; the text still supplies the dates and counts.
    """
    if not isinstance(pdu, DeliverSm | DataSm):
        return None
    # Most receipts carry no TLV: then there is none to look up four times.
    has_tlvs = bool(pdu.tlvs)
    body = pdu.payload
    text = body.decode("latin-1") if body else ""
    tlv_id = pdu.receipted_message_id if has_tlvs else None
    msg_type = pdu.esm_class & _MESSAGE_TYPE_MASK
    looks_like = text.lstrip()[:3].lower() == "id:"
    if not (msg_type or tlv_id or looks_like):
        return None
    parsed = _parse_fields(text) if text else None
    message_id = (tlv_id or "").strip() or (parsed.message_id if parsed else "")
    if not message_id:
        return None
    tlv_state = pdu.message_state if has_tlvs else None
    if tlv_state is not None and tlv_state in MESSAGE_STATE_TO_STAT:
        state = MESSAGE_STATE_TO_STAT[tlv_state]
        raw_state = str(tlv_state)
    elif parsed is not None:
        state, raw_state = normalise_stat(parsed.raw_state), parsed.raw_state
    else:
        state, raw_state = "UNKNOWN", ""
    nec = pdu.network_error_code if has_tlvs else None
    if nec is not None:
        error_code: str | None = f"{nec[1]:03d}"
    else:
        error_code = parsed.error_code if parsed else None
    if parsed is None:
        return Receipt(
            message_id=message_id,
            state=state,
            error_code=error_code,
            raw_state=raw_state,
            network_error_code=nec,
        )
    return Receipt(
        message_id=message_id,
        state=state,
        error_code=error_code,
        submitted=parsed.submitted,
        delivered=parsed.delivered,
        submit_date_text=parsed.submit_date,
        done_date_text=parsed.done_date,
        text=parsed.text,
        raw_state=raw_state,
        extra=parsed.extra,
        network_error_code=nec,
    )


# --------------------------------------------------------------------------------------------
# Message id matching

MessageIdMode = Literal[
    "as_is", "ignore_case", "hex", "decimal", "hex_to_decimal", "decimal_to_hex"
]

#: The modes of :func:`normalise_message_id`, with what each assumes about the carrier:
#:
#: ``as_is``          both ids are the same string (only surrounding blanks and NULs removed);
#: ``ignore_case``    same string up to letter case;
#: ``hex``            both ids are hexadecimal numbers (case and leading zeros may differ);
#: ``decimal``        both ids are decimal numbers (leading zeros may differ);
#: ``hex_to_decimal`` submit_sm_resp gives hexadecimal, the receipt gives decimal (the most
#:                    common mismatch, e.g. "0A1B2C" then "id:662316");
#: ``decimal_to_hex`` submit_sm_resp gives decimal, the receipt gives hexadecimal.
MESSAGE_ID_MODES: Final[tuple[MessageIdMode, ...]] = (
    "as_is",
    "ignore_case",
    "hex",
    "decimal",
    "hex_to_decimal",
    "decimal_to_hex",
)

_HEX = re.compile(r"(?:0[xX])?([0-9A-Fa-f]+)")
_DEC = re.compile(r"[0-9]+")


def normalise_message_id(
    raw: str, mode: MessageIdMode = "as_is", *, source: Literal["submit", "receipt"] = "submit"
) -> str:
    """One canonical key for an SMSC message id, so a submit_sm_resp id and a receipt id match.

    ``source`` says where ``raw`` came from: ``"submit"`` (submit_sm_resp message_id) or
    ``"receipt"`` (receipt id / receipted_message_id). In the numeric modes the key is the
    number in decimal with no leading zeros; an id that is not a number in the expected base
    becomes ``"raw:" + id`` (which never equals a numeric key), so a carrier that breaks its
    own format produces a miss, not a wrong match.

    >>> normalise_message_id("0A1B2C", "hex_to_decimal", source="submit")
    '662316'
    >>> normalise_message_id("662316", "hex_to_decimal", source="receipt")
    '662316'
    >>> normalise_message_id("00ab", "hex") == normalise_message_id("AB", "hex")
    True
    """
    value = raw.strip().strip("\0").strip()
    if mode == "as_is":
        return value
    if mode == "ignore_case":
        return value.lower()
    if mode == "hex":
        base = 16
    elif mode == "decimal":
        base = 10
    elif mode == "hex_to_decimal":
        base = 16 if source == "submit" else 10
    elif mode == "decimal_to_hex":
        base = 10 if source == "submit" else 16
    else:
        raise ValueError(f"unknown message id mode {mode!r}; expected one of {MESSAGE_ID_MODES}")
    if base == 16:
        m = _HEX.fullmatch(value)
        if m is not None and len(value) <= 64:
            return str(int(m.group(1), 16))
    elif _DEC.fullmatch(value) and len(value) <= 64:
        return str(int(value))
    return "raw:" + value
