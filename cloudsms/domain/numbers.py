"""Destination numbers: calling codes and the document's per-country number rules (SPEC §4).

The set of assigned ITU calling codes comes from ``phonenumbers`` metadata, read once at import;
a full ``phonenumbers.parse`` costs ~20 µs and is never called per recipient (SPEC §7).
"""

from __future__ import annotations

import phonenumbers

#: Every assigned ITU-T E.164 calling code, geographic and non-geographic (800, 882, …).
CALLING_CODES: frozenset[int] = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)

CHINA = 86
SINGAPORE = 65
MAX_MSISDN = 32
#: Longest number a carrier can be given, calling code included: SMPP 3.4 §5.2.9,
#: destination_addr is a C-Octet String of at most 21 octets with its NUL (E.164 itself stops
#: at 15 digits). DEST_MSISDN may have 32 digits by the document, but a longer whole number
#: could never be sent.
MAX_NUMBER = 20


def region_of(country_code: int) -> str:
    """ISO region of a calling code (the main one where several share it), or "001"."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    return regions[0] if regions else "ZZ"


def is_valid_msisdn_text(msisdn: str) -> bool:
    """DEST_MSISDN: 1..32 ASCII digits (document: 非数字或长度超过32字节 is invalid)."""
    return 0 < len(msisdn) <= MAX_MSISDN and msisdn.isascii() and msisdn.isdigit()


def structural_error(country_code: int, msisdn: str) -> str | None:
    """Why the number is Invalid_parameter (the answer's RESULT_DETAIL), or None.

    Checked before anything else. The sentence is built only for a refused number.
    """
    if country_code not in CALLING_CODES:
        return f"COUNTRY_CODE {country_code} is not an assigned calling code"
    if not is_valid_msisdn_text(msisdn):
        if not msisdn:
            return "DEST_MSISDN is empty"
        if len(msisdn) > MAX_MSISDN:
            return f"DEST_MSISDN has {len(msisdn)} characters; at most {MAX_MSISDN} digits"
        return f"DEST_MSISDN {msisdn!r} is not digits only (no +, spaces or dashes)"
    if country_code == CHINA and len(msisdn) != 11:
        return f"DEST_MSISDN {msisdn} has {len(msisdn)} digits; mainland China mobiles have 11"
    if len(str(country_code)) + len(msisdn) > MAX_NUMBER:
        return f"the number with its country code is over {MAX_NUMBER} digits (SMPP limit)"
    return None


def local_reject_cause(country_code: int, msisdn: str) -> str | None:
    """A number rule that makes the recipient LOCAL_REJECTED (accepted, never sent), or None."""
    if country_code == SINGAPORE and (len(msisdn) != 8 or msisdn[0] not in "89"):
        return "invalid_singapore_number"
    return None
