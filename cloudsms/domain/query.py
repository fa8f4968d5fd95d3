"""DR_QUERY: a customer asks for the current state of up to 200 of its own SMS_UIDs.

An extension of the UIP protocol (the document only pushes reports), documented in
docs/integration-guide.en.md. Request::

    {"METHOD": "DR_QUERY", "TYPE": "REQUEST", "SERIAL": 1, "TIME": "…", "AUTH_KEY": "…",
     "VERSION": "2021-01-01", "SMS_UID_LIST": ["0MWWBXC46SZZVVU4600000", …]}

Answer: the envelope, RESULT_CODE/RESULT_DESC, and SMS_RESULT_LIST with one entry per asked
SMS_UID, in the order asked. A UID that is unknown — or belongs to another customer, which is
answered exactly the same way so nothing leaks — gets RESULT_CODE DB_not_find.

SMS_STATE and STATE_DESC come from :func:`cloudsms.domain.status.customer_state`, the mapping
every pushed report is made with, so a poll and a push never disagree: 9 IDLE while a message
waits for a carrier, 1 ENROUTE once a carrier has it, then what its report says (a LOCAL_REJECTED
message reads 8 / ``LOCAL_REJECTED``, as pushed). REPORT_TIME is the pushed report's time for a
final state, ``""`` before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.money import format_amount
from cloudsms.domain.packet import MAX_RECIPIENTS, PacketError
from cloudsms.domain.status import FINAL_STATES, customer_state
from cloudsms.domain.timefmt import format_uip_time

QUERY_METHOD = "DR_QUERY"


def read_uid_list(packet: dict[str, Any]) -> list[str]:
    uids = packet.get("SMS_UID_LIST")
    if uids is None:
        raise PacketError(ResultCode.LOST_INFO, "SMS_UID_LIST is missing")
    if (
        not isinstance(uids, list)
        or not uids
        or len(uids) > MAX_RECIPIENTS
        or not all(isinstance(u, str) and 0 < len(u) <= 32 for u in uids)
    ):
        raise PacketError(ResultCode.INVALID_PARAMETER, "SMS_UID_LIST must list 1..200 SMS_UIDs")
    return uids


def result_entry(uid: str, record: Any | None) -> dict[str, Any]:
    """One SMS_RESULT_LIST entry for ``uid`` (``record``: a MessageRecord or None)."""
    if record is None:
        return {
            "SMS_UID": uid,
            "RESULT_CODE": int(ResultCode.DB_NOT_FIND),
            "RESULT_DESC": ResultCode.DB_NOT_FIND.desc,
        }
    state, desc = customer_state(record.state, record.sms_state, record.result_desc)
    # Rows stored before final_ms was written at acceptance (LOCAL_REJECTED) end at updated_ms.
    final_ms = (record.final_ms or record.updated_ms) if record.state in FINAL_STATES else None
    return {
        "SMS_UID": uid,
        "RESULT_CODE": int(ResultCode.OK),
        "RESULT_DESC": ResultCode.OK.desc,
        "COUNTRY_CODE": record.country_code,
        "DEST_MSISDN": record.dest_msisdn,
        "SMS_STATE": int(state),
        "STATE_DESC": desc,
        "SUBMIT_TIME": format_uip_time(_utc(record.created_ms)),
        "REPORT_TIME": format_uip_time(_utc(final_ms)) if final_ms else "",
        "SMS_COUNT": record.segments,
        "FEE": format_amount(record.fee_micros),
        "CURRENCY": record.currency,
    }


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
