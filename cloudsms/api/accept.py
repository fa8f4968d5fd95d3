"""Deciding each recipient of a valid packet: refused, LOCAL_REJECTED or accepted (SPEC §2–4).

Strategy: everything here is computed from the request, the customer and the in-memory
configuration; nothing is written. The result is a ``PacketWrite`` (the messages plus the answer
to send) that the group-commit writer makes durable before the answer leaves. Work per packet
(content planning, registration rules per destination country) is done once per packet; work per
recipient is a handful of dict and string operations.

Per recipient, in order: structure (Invalid_parameter / Lost_info) → blacklist (Intercept) →
the account's opt-out list (Intercept: the number sent STOP, ``domain/opt_out.py``) →
registration policy (Intercept) → price (Unpriced_area) → route suspended by an operator
(Send_failed) → LOCAL_REJECTED causes (accepted with an
SMS_UID, stored REJECTED, never charged: unknown or ungranted ROUTE_ID, invalid Singapore number,
no carrier on the route for the destination).
The last cause, insufficient balance, is decided inside the store transaction.

Every refused recipient's DETAIL_LIST entry carries RESULT_DETAIL, the sentence saying why
(``cloudsms.domain.reasons``), and so does a LOCAL_REJECTED one. The sentences are built in the
refusing branches only: an accepted recipient costs what it did before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudsms.api.answers import answer, detail, top_level_code
from cloudsms.domain import numbers, reasons
from cloudsms.domain.codes import LOCAL_REJECTED, ResultCode
from cloudsms.domain.content import ContentPlan
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import Customer, NewMessage, PacketWrite, Route
from cloudsms.domain.packet import SendRequest
from cloudsms.domain.registration import check_destination
from cloudsms.domain.status import MessageState
from cloudsms.services.config_cache import PreparedConfig


@dataclass(slots=True)
class AcceptResult:
    write: PacketWrite | None
    #: The answer when nothing needs storing (no recipient accepted).
    answer: bytes
    accepted: int
    codes: tuple[ResultCode, ...]
    #: ("#position +CC NUMBER", RESULT_DESC, RESULT_DETAIL) of each refused recipient, for the
    #: log; LOCAL_REJECTED ones are not refusals (they are accepted).
    refused: tuple[tuple[str, str, str], ...] = ()


def route_reject_cause(config: PreparedConfig, customer: Customer, route_name: str) -> str | None:
    route = config.snapshot.routes_by_name.get(route_name)
    if route is None:
        return "route_unknown"
    if (customer.id, route.id) not in config.snapshot.grants:
        return "route_not_granted"
    return None


def plan_packet(
    request: SendRequest,
    customer: Customer,
    config: PreparedConfig,
    plan: ContentPlan,
    *,
    route: Route | None,
    sender: str,
    uids: UidGenerator,
    now_ms: int,
    packet_key: str | None,
) -> AcceptResult:
    """Decide every recipient and build the packet's write and answer."""
    snapshot = config.snapshot
    route_cause = route_reject_cause(config, customer, request.route_id)
    route_suspended = route is not None and not route.enabled and route_cause is None
    prices = (
        config.price_tables.get(customer.price_list_id)
        if customer.price_list_id is not None
        else None
    )
    blacklisted_for_customer = snapshot.blacklist_by_customer.get(customer.id, frozenset())
    blacklisted_everywhere = snapshot.blacklist_global
    opted_out = snapshot.opt_outs_by_customer.get(customer.id, frozenset())
    policy_verdicts: dict[int, str | None] = {}
    send_at_ms = int(request.send_at.timestamp() * 1000) if request.send_at else now_ms

    details: list[dict[str, Any]] = []
    codes: list[ResultCode] = []
    refused: list[tuple[str, str, str]] = []
    pending: list[
        tuple[int, int, str, int, str | None]
    ] = []  # detail index, cc, msisdn, fee, cause
    for entry in request.recipients:
        code, cc, msisdn, why = _check_structure(entry)
        if code is not ResultCode.OK:
            details.append(detail(code, cc, msisdn, reason=why))
            codes.append(code)
            refused.append((_label(len(details), cc, msisdn), code.desc, why))
            continue
        number = f"{cc}{msisdn}"
        if number in blacklisted_everywhere:
            code, why = ResultCode.INTERCEPT, f"+{cc} {msisdn} is on the platform's blacklist"
        elif number in blacklisted_for_customer:
            code, why = ResultCode.INTERCEPT, f"+{cc} {msisdn} is on this account's blacklist"
        elif number in opted_out:
            code = ResultCode.INTERCEPT
            why = f"+{cc} {msisdn} opted out of this account's messages (STOP)"
        else:
            if cc not in policy_verdicts:
                policy_verdicts[cc] = check_destination(
                    snapshot.policies.get(cc),
                    content=request.content,
                    signature=request.signature,
                    signature_type=request.signature_type,
                    sender=sender,
                    approved_signatures=snapshot.signatures.get(customer.id, frozenset()),
                    templates=snapshot.templates.get(customer.id, ()),
                    approved_senders=snapshot.senders.get(customer.id, frozenset()),
                )
            verdict = policy_verdicts[cc]
            if verdict is not None:
                code = ResultCode.INTERCEPT
                why = reasons.intercepted(
                    verdict, country_code=cc, sender=sender, signature=request.signature
                )
        price = prices.price_for(number) if prices is not None else None
        if code is ResultCode.OK and price is None:
            code = ResultCode.UNPRICED_AREA
            why = (
                f"no price for +{cc} {msisdn} in this account's price list"
                if prices is not None
                else "this account has no price list"
            )
        if code is ResultCode.OK and route_suspended:
            code = ResultCode.SEND_FAILED
            why = f"route {request.route_id!r} is suspended by the operator"
        if code is not ResultCode.OK:
            details.append(detail(code, cc, msisdn, reason=why))
            codes.append(code)
            refused.append((_label(len(details), cc, msisdn), code.desc, why))
            continue
        cause = (
            route_cause
            or numbers.local_reject_cause(cc, msisdn)
            or config.routing.reject_cause(request.route_id, number)
        )
        pending.append(
            (len(details), cc, msisdn, 0 if cause else (price or 0) * plan.segments, cause)
        )
        if cause:
            why = reasons.local_rejected_detail(
                cause, route=request.route_id, country_code=cc, msisdn=msisdn
            )
            details.append(detail(ResultCode.OK, cc, msisdn, reason=why))
        else:
            details.append(detail(ResultCode.OK, cc, msisdn))
        codes.append(ResultCode.OK)

    top = top_level_code(codes)
    if not pending:
        body = answer(
            request.envelope.method,
            request.envelope.serial,
            top,
            details,
            reason=nothing_accepted(refused),
        )
        return AcceptResult(None, body, 0, tuple(codes), tuple(refused))

    messages = []
    for (index, cc, msisdn, fee, cause), uid in zip(
        pending, uids.next_uids(len(pending)), strict=True
    ):
        details[index]["SMS_UID"] = uid
        messages.append(
            NewMessage(
                sms_uid=uid,
                customer_id=customer.id,
                serial=request.envelope.serial,
                country_code=cc,
                dest_msisdn=msisdn,
                route_name=request.route_id,
                sender=sender,
                content=plan.text,
                encoding=plan.encoding,
                segments=plan.segments,
                priority=request.priority,
                send_at_ms=send_at_ms,
                customer_body=request.customer_body,
                state=MessageState.REJECTED if cause else MessageState.ACCEPTED,
                result_desc=LOCAL_REJECTED if cause else None,
                detail=cause,
                fee_micros=fee,
                currency=customer.currency,
                created_ms=now_ms,
            )
        )
    body = answer(request.envelope.method, request.envelope.serial, top, details)
    write = PacketWrite(
        customer_id=customer.id,
        packet_key=packet_key,
        messages=tuple(messages),
        answer=body,
        created_ms=now_ms,
    )
    return AcceptResult(write, body, len(messages), tuple(codes), tuple(refused))


def _label(position: int, cc: Any, msisdn: Any) -> str:
    """A refused recipient as the log names it: ``#2 +86 1380013800``, or ``#5`` alone."""
    if cc is None or msisdn is None:
        return f"#{position}"
    return f"#{position} +{cc} {msisdn}"


def nothing_accepted(refused: list[tuple[str, str, str]]) -> str:
    """The top-level RESULT_DETAIL when no recipient was accepted."""
    if len(refused) == 1:
        return refused[0][2]
    return f"none of the {len(refused)} recipients was accepted: see each DETAIL_LIST entry"


def _check_structure(entry: object) -> tuple[ResultCode, Any, Any, str]:
    """Code for one MULTI_MSISDN_LIST entry's shape, what to echo back, and why if refused."""
    if not isinstance(entry, dict):
        return (
            ResultCode.INVALID_PARAMETER, None, None,
            "a MULTI_MSISDN_LIST entry must be an object with COUNTRY_CODE and DEST_MSISDN",
        )  # fmt: skip
    cc = entry.get("COUNTRY_CODE")
    msisdn = entry.get("DEST_MSISDN")
    if cc is None or msisdn is None:
        missing = "COUNTRY_CODE" if cc is None else "DEST_MSISDN"
        return ResultCode.LOST_INFO, cc, msisdn, f"{missing} is missing"
    if not isinstance(cc, int) or isinstance(cc, bool):
        return ResultCode.INVALID_PARAMETER, cc, msisdn, "COUNTRY_CODE must be a JSON integer"
    if not isinstance(msisdn, str):
        return ResultCode.INVALID_PARAMETER, cc, msisdn, "DEST_MSISDN must be a JSON string"
    error = numbers.structural_error(cc, msisdn)
    if error is not None:
        return ResultCode.INVALID_PARAMETER, cc, msisdn, error
    return ResultCode.OK, cc, msisdn, ""
