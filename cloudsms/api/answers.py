"""UIP ANSWER packets, serialized once with orjson (field order as in the document's examples)."""

from __future__ import annotations

from typing import Any

import orjson

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.timefmt import format_uip_time


def detail(
    code: ResultCode, country_code: Any, dest_msisdn: Any, sms_uid: str = ""
) -> dict[str, Any]:
    """One DETAIL_LIST entry; a refused recipient's SMS_UID is "" (SPEC §2)."""
    return {
        "RESULT_CODE": int(code),
        "RESULT_DESC": code.desc,
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
) -> bytes:
    body: dict[str, Any] = {
        "METHOD": method,
        "TYPE": "ANSWER",
        "SERIAL": serial,
        "TIME": format_uip_time(),
        "RESULT_CODE": int(code),
        "RESULT_DESC": code.desc,
    }
    if with_details:
        body["DETAIL_LIST"] = details or []
    return orjson.dumps(body)


def top_level_code(codes: list[ResultCode]) -> ResultCode:
    """SPEC §2: OK if any recipient was accepted; else their common code, else Invalid_parameter."""
    if ResultCode.OK in codes:
        return ResultCode.OK
    first = codes[0] if codes else ResultCode.INVALID_PARAMETER
    return first if all(c == first for c in codes) else ResultCode.INVALID_PARAMETER
