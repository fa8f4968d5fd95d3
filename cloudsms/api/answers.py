"""UIP ANSWER packets, serialized once with orjson (field order as in the document's examples).

``RESULT_DETAIL`` is the platform's addition: one sentence saying why a packet or a recipient
was refused ("DEST_MSISDN 1380013800 has 10 digits; mainland China mobiles have 11"), next to
the document's RESULT_DESC. It is present only when there is something to say, so an accepted
packet's answer is exactly the document's, and a client written to the document reads the rest
unchanged. Its wording is for people and may change; programs branch on RESULT_CODE.
"""

from __future__ import annotations

from typing import Any

import orjson

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.timefmt import now_uip_time


def detail(
    code: ResultCode,
    country_code: Any,
    dest_msisdn: Any,
    sms_uid: str = "",
    reason: str | None = None,
) -> dict[str, Any]:
    """One DETAIL_LIST entry; a refused recipient's SMS_UID is "" (SPEC §2)."""
    if reason is None:
        return {
            "RESULT_CODE": int(code),
            "RESULT_DESC": code.desc,
            "DEST_MSISDN": dest_msisdn,
            "COUNTRY_CODE": country_code,
            "SMS_UID": sms_uid,
        }
    return {
        "RESULT_CODE": int(code),
        "RESULT_DESC": code.desc,
        "RESULT_DETAIL": reason,
        "DEST_MSISDN": dest_msisdn,
        "COUNTRY_CODE": country_code,
        "SMS_UID": sms_uid,
    }


def answer(
    method: str,
    serial: int,
    code: ResultCode,
    details: list[dict[str, Any]] | None = None,
    *,
    with_details: bool = True,
    reason: str | None = None,
) -> bytes:
    """The ANSWER's bytes; ``reason`` becomes RESULT_DETAIL (absent when None)."""
    body: dict[str, Any] = {
        "METHOD": method,
        "TYPE": "ANSWER",
        "SERIAL": serial,
        "TIME": now_uip_time(),
        "RESULT_CODE": int(code),
        "RESULT_DESC": code.desc,
    }
    if reason is not None:
        body["RESULT_DETAIL"] = reason
    if with_details:
        body["DETAIL_LIST"] = details or []
    return orjson.dumps(body)


def top_level_code(codes: list[ResultCode]) -> ResultCode:
    """SPEC §2: OK if any recipient was accepted; else their common code, else Invalid_parameter."""
    if ResultCode.OK in codes:
        return ResultCode.OK
    first = codes[0] if codes else ResultCode.INVALID_PARAMETER
    return first if all(c == first for c in codes) else ResultCode.INVALID_PARAMETER
