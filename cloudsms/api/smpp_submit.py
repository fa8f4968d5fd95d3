"""A customer's submit_sm read as one recipient of a UIP SMS_SEND_REQUEST, and the statuses.

Strategy: the SMPP server must accept exactly as the UIP endpoint does, so a submit_sm is turned
into the same ``SendRequest`` (one recipient, the account's ROUTE_ID, source_addr as
ORIGINAL_ADDR, schedule_delivery_time as SMS_SEND_TIME) and handed to the same planning code
(``cloudsms.api.accept.plan_packet``); a submit_multi is the same packet with one recipient per
destination. validity_period, which UIP lacks, becomes the messages' own deadline
(``messages.expires_ms``). What only SMPP can get wrong (addresses, data_coding, esm_class,
time fields) is checked here, first, each with its command_status;
the UIP result codes of the shared checks map to command statuses through :data:`STATUS_OF`.
docs/integration-guide.en.md has the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.numbers import CALLING_CODES
from cloudsms.domain.packet import MAX_RECIPIENTS, MAX_SENDER, SEND_METHOD, Envelope, SendRequest
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.constants import EsmClass
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import DistributionList, SmeAddress, SubmitMulti, SubmitSm, UnsuccessSme
from cloudsms.smpp.times import SmppTimeError, parse_smpp_time

#: Vendor-specific statuses (SMPP 3.4 §5.1.3 reserves 0x400-0x4FF for the SMSC): refusals that
#: SMPP has no status of its own for.
ESME_RBLOCKED = 0x00000401
ESME_RUNPRICED = 0x00000402

#: The UIP result code of a shared check → the submit_sm_resp command_status.
STATUS_OF: dict[ResultCode, int] = {
    ResultCode.INVALID_PARAMETER: S.ESME_RINVDSTADR,
    ResultCode.LOST_INFO: S.ESME_RINVDSTADR,
    ResultCode.INVALID_CONTEXT: S.ESME_RINVMSGLEN,
    ResultCode.INTERCEPT: ESME_RBLOCKED,
    ResultCode.UNPRICED_AREA: ESME_RUNPRICED,
    ResultCode.SEND_FAILED: S.ESME_RSUBMITFAIL,
    ResultCode.QUEUE_TOO_LARGE: S.ESME_RMSGQFUL,
    ResultCode.BUSY: S.ESME_RTHROTTLED,
    ResultCode.DB_NOT_FIND: S.ESME_RSYSERR,
    ResultCode.UNKNOWN_ERROR: S.ESME_RSYSERR,
}

#: data_coding values taken (§5.2.19): SMSC default read as GSM 03.38, IA5, Latin-1, UCS-2.
DATA_CODINGS = frozenset({0, 1, 3, 8})


class Refused(Exception):
    """A submit_sm refused before planning: its command_status and why (for the log)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def split_number(address: str) -> tuple[int, str]:
    """destination_addr (E.164 digits, an optional leading +) → (calling code, national part).

    ITU calling codes are prefix-free, so the first 1-3 digits that are one are the code.
    """
    digits = address.removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        raise Refused(S.ESME_RINVDSTADR, f"destination_addr {address!r} is not E.164 digits")
    for size in (1, 2, 3):
        if int(digits[:size]) in CALLING_CODES and len(digits) > size:
            return int(digits[:size]), digits[size:]
    raise Refused(S.ESME_RINVDSTADR, f"destination_addr {address!r} has no calling code")


@dataclass(frozen=True, slots=True)
class Submission:
    """A whole submit_sm or submit_multi read as a UIP packet.

    ``request.recipients`` are the destinations that got past the SMPP checks, in the PDU's
    order; ``addresses[i]`` is recipient i as the ESME wrote it and ``positions[i]`` its place
    among the PDU's destinations (submit_multi_resp names refused ones as they were sent).
    """

    request: SendRequest
    addresses: tuple[SmeAddress, ...]
    positions: tuple[int, ...]
    #: (place in the PDU, unsuccess_sme) of destinations refused before planning (submit_multi).
    unsuccess: tuple[tuple[int, UnsuccessSme], ...]
    #: validity_period as a deadline, epoch milliseconds; None when empty.
    expires_ms: int | None


def read_submit(
    pdu: SubmitSm | SubmitMulti,
    *,
    route: str,
    serial: int,
    now: dt.datetime,
    max_schedule: dt.timedelta,
) -> Submission:
    """The packet a whole submit_sm or submit_multi stands for; :class:`Refused` when wrong.

    Concatenated parts (of a submit_sm or a submit_multi) are merged first
    (``cloudsms.api.smpp_concat``); one that gets here unmerged is refused, never read as a
    message of its own. A submit_multi's destination that cannot be a
    recipient (a distribution list, an address that is not E.164) is refused alone, listed in
    :attr:`Submission.unsuccess`; a submit_sm's refuses the submit.
    """
    if pdu.esm_class & EsmClass.UDHI or pdu.sar is not None:
        raise Refused(S.ESME_RINVESMCLASS, "a concatenated part, not a whole message")
    if pdu.message_payload is not None and pdu.short_message:
        raise Refused(S.ESME_RINVMSGLEN, "short_message and message_payload both carry text")
    if pdu.data_coding not in DATA_CODINGS:
        raise Refused(
            S.ESME_RSUBMITFAIL, f"data_coding {pdu.data_coding} is not taken (0, 1, 3 or 8)"
        )
    data = pdu.short_message if pdu.message_payload is None else pdu.message_payload
    if pdu.data_coding == 8 and len(data) % 2:
        raise Refused(S.ESME_RINVMSGLEN, "UCS-2 text has an odd number of octets")
    content = decode_text(data, pdu.data_coding)
    if not content:
        raise Refused(S.ESME_RINVMSGLEN, "the message is empty")
    if "\ufffd" in content:
        raise Refused(S.ESME_RSUBMITFAIL, f"the text is not valid in data_coding {pdu.data_coding}")
    sender = pdu.source_addr or None
    if sender is not None and (
        len(sender) > MAX_SENDER or any(not 0x20 <= ord(c) <= 0x7E for c in sender)
    ):
        raise Refused(
            S.ESME_RINVSRCADR, f"source_addr: at most {MAX_SENDER} printable ASCII characters"
        )
    send_at = _send_at(pdu.schedule_delivery_time, now, max_schedule)
    expires = _expires(pdu.validity_period, now, send_at)
    recipients: list[dict[str, object]] = []
    addresses: list[SmeAddress] = []
    positions: list[int] = []
    unsuccess: list[tuple[int, UnsuccessSme]] = []
    for place, dest in enumerate(_destinations(pdu)):
        if isinstance(dest, DistributionList):
            unsuccess.append((place, UnsuccessSme(0, 0, dest.dl_name, S.ESME_RINVDLNAME)))
            continue
        try:
            cc, msisdn = split_number(dest.destination_addr)
        except Refused as exc:
            if isinstance(pdu, SubmitSm):
                raise
            unsuccess.append((place, unsuccess_of(dest, exc.status)))
            continue
        recipients.append({"COUNTRY_CODE": cc, "DEST_MSISDN": msisdn})
        addresses.append(dest)
        positions.append(place)
    request = SendRequest(
        envelope=Envelope(method=SEND_METHOD, serial=serial, time=now.isoformat()),
        auth_key="",
        recipients=recipients,
        content=content,
        route_id=route,
        version="",
        original_addr=sender,
        signature=None,
        signature_type=None,
        priority=1 if pdu.priority_flag else 0,
        customer_body=None,
        send_at=send_at,
    )
    return Submission(
        request,
        tuple(addresses),
        tuple(positions),
        tuple(unsuccess),
        None if expires is None else int(expires.timestamp() * 1000),
    )


def _destinations(pdu: SubmitSm | SubmitMulti) -> tuple[SmeAddress | DistributionList, ...]:
    if isinstance(pdu, SubmitSm):
        return (SmeAddress(pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr),)
    if not 1 <= len(pdu.dest_addresses) <= MAX_RECIPIENTS:
        raise Refused(
            S.ESME_RINVNUMDESTS,
            f"{len(pdu.dest_addresses)} destinations; 1 to {MAX_RECIPIENTS} are taken",
        )
    return pdu.dest_addresses


def unsuccess_of(dest: SmeAddress, status: int) -> UnsuccessSme:
    """The unsuccess_sme entry (§4.5.2) naming a refused destination as the ESME sent it."""
    return UnsuccessSme(dest.dest_addr_ton, dest.dest_addr_npi, dest.destination_addr, status)


def _expires(field: str, now: dt.datetime, send_at: dt.datetime | None) -> dt.datetime | None:
    """validity_period (§7.1.1, absolute or relative to now) as a deadline; None when empty.

    Malformed, already past, or not after schedule_delivery_time: ESME_RINVEXPIRY (a message
    that could only expire is refused rather than accepted to be ended unsent).
    """
    try:
        moment = parse_smpp_time(field, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVEXPIRY, str(exc)) from None
    if moment is None:
        return None
    if moment <= now:
        raise Refused(S.ESME_RINVEXPIRY, "validity_period has already passed")
    if send_at is not None and moment <= send_at:
        raise Refused(S.ESME_RINVEXPIRY, "validity_period ends before schedule_delivery_time")
    return moment


def _send_at(field: str, now: dt.datetime, max_schedule: dt.timedelta) -> dt.datetime | None:
    """schedule_delivery_time as SMS_SEND_TIME is read: past means now, too far is refused."""
    try:
        moment = parse_smpp_time(field, now)
    except SmppTimeError as exc:
        raise Refused(S.ESME_RINVSCHED, str(exc)) from None
    if moment is None or moment <= now:
        return None
    if moment - now > max_schedule:
        raise Refused(
            S.ESME_RINVSCHED,
            f"schedule_delivery_time is more than {max_schedule.days} days ahead",
        )
    return moment
