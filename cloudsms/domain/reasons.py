"""Why a recipient was refused or LOCAL_REJECTED, in words a customer can act on.

The accept path decides with short cause codes (``route_unknown``, ``sender_not_numeric`` …),
which the store keeps in a message's ``detail``; this module turns a code into the sentence the
ANSWER carries as RESULT_DETAIL and the console and portal show on the message page. Sentences
are built only for a refused or rejected recipient, never for an accepted one (the hot path).

Both ROUTE_ID causes read the same to a customer ("not a route of this account"): telling
"exists but not granted" from "does not exist" would let a customer list other customers'
route names. The operator sees the code itself in the console.
"""

from __future__ import annotations

from typing import Final

from cloudsms.domain.numbers import region_of

#: Sentences for the LOCAL_REJECTED causes (SPEC §4): accepted, never sent, never charged.
_LOCAL_REJECTED: Final = {
    "route_unknown": "ROUTE_ID {route!r} is not a route of this account",
    "route_not_granted": "ROUTE_ID {route!r} is not a route of this account",
    "invalid_singapore_number": (
        "Singapore (65) mobiles have 8 digits starting with 8 or 9, not {msisdn!r}"
    ),
    "no_carrier": "route {route!r} has no carrier for +{cc} ({region})",
    "insufficient_balance": "the balance and credit limit did not cover the fee",
}

#: Sentences for the registration rules of a destination (Intercept).
_INTERCEPTED: Final = {
    "template_not_registered": (
        "{region} (+{cc}) requires a registered template: the content matches none of the"
        " templates approved for this account"
    ),
    "signature_not_registered": (
        "{region} (+{cc}) requires a registered signature: {signature} is not approved for this"
        " account"
    ),
    "sender_not_registered": (
        "{region} (+{cc}) requires a registered sender ID: {sender!r} is not approved for this"
        " account"
    ),
    "sender_not_numeric": "{region} (+{cc}) accepts numeric sender IDs only, not {sender!r}",
    "sender_not_alpha": "{region} (+{cc}) needs a sender ID with letters, not {sender!r}",
}


def local_rejected(cause: str, *, route: str, country_code: int, msisdn: str) -> str:
    """The sentence for a LOCAL_REJECTED cause code (an unknown code reads as itself).

    >>> local_rejected("no_carrier", route="OTP", country_code=49, msisdn="1512")
    "route 'OTP' has no carrier for +49 (DE)"
    """
    template = _LOCAL_REJECTED.get(cause)
    if template is None:
        return cause
    return template.format(
        route=route, cc=country_code, region=region_of(country_code), msisdn=msisdn
    )


def local_rejected_detail(cause: str, *, route: str, country_code: int, msisdn: str) -> str:
    """RESULT_DETAIL of a recipient accepted (OK, with an SMS_UID) but LOCAL_REJECTED."""
    why = local_rejected(cause, route=route, country_code=country_code, msisdn=msisdn)
    return f"LOCAL_REJECTED, will not be sent or charged (a REJECTED report follows): {why}"


def intercepted(cause: str, *, country_code: int, sender: str, signature: str | None) -> str:
    """The sentence for a registration-rule cause code of ``check_destination``."""
    template = _INTERCEPTED.get(cause)
    if template is None:
        return cause
    return template.format(
        region=region_of(country_code),
        cc=country_code,
        sender=sender,
        signature=repr(signature) if signature else "the signature in the content",
    )
