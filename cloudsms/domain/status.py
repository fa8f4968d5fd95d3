"""The message state machine.

Rule 1: every transition a message may take is in TRANSITIONS below; the store refuses others.
Every state write of the store is guarded by ``WHERE state IN (…)`` rendered from
:func:`sources_of`, and a property test drives the pipeline to check that it stays inside.
Rule 2: a final state never changes again (a late carrier receipt is recorded, not applied).

    ACCEPTED ──(dispatcher claims)──▶ QUEUED ──(submit_sm_resp OK)──▶ SUBMITTED ──(receipt)──▶ final
       │                                │ ▲
       │                                └─┘ back to ACCEPTED to retry (throttled, link down)
       └──(LOCAL_REJECTED at acceptance)──▶ REJECTED
    QUEUED ──(permanent carrier error / no valid PDU can be made of it)──▶ FAILED
    QUEUED ──(refused by the platform: no carrier)──▶ REJECTED
    SUBMITTED ──(no receipt within 25 h)──▶ EXPIRED
    ACCEPTED, QUEUED ──(receipt)──▶ a receipt's final state

Why a receipt may finish a message that is not SUBMITTED: a worker that lost its lease still
records the segments it submitted (first submission wins, so their receipts match), but not its
outcome — the message went back to ACCEPTED, or is QUEUED under another worker's claim. When
the carrier's receipt for it arrives it is the truth about the message, and it decides it.

Final states map to the SMS_STATE of the report (SPEC §5); FAILED is reported as UNDELIVERABLE.
Rule 3: what a customer is told about a message — in its pushed report and in DR_QUERY alike —
comes from :func:`customer_state`, the one mapping, so the two can never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from cloudsms.domain.codes import SmsState


class MessageState(enum.StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    DELETED = "deleted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    FAILED = "failed"


#: The final states a carrier receipt can decide (``dlr.FINAL_MESSAGE_STATE``).
_FINAL_BY_RECEIPT = {
    MessageState.DELIVERED,
    MessageState.UNDELIVERABLE,
    MessageState.EXPIRED,
    MessageState.DELETED,
    MessageState.REJECTED,
    MessageState.UNKNOWN,
}

TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.ACCEPTED: frozenset({MessageState.QUEUED, *_FINAL_BY_RECEIPT}),
    MessageState.QUEUED: frozenset(
        {MessageState.SUBMITTED, MessageState.ACCEPTED, MessageState.FAILED, *_FINAL_BY_RECEIPT}
    ),
    MessageState.SUBMITTED: frozenset(_FINAL_BY_RECEIPT),
    MessageState.DELIVERED: frozenset(),
    MessageState.UNDELIVERABLE: frozenset(),
    MessageState.EXPIRED: frozenset(),
    MessageState.DELETED: frozenset(),
    MessageState.REJECTED: frozenset(),
    MessageState.UNKNOWN: frozenset(),
    MessageState.FAILED: frozenset(),
}

FINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

#: The SMS_STATE a customer's report carries for each final machine state.
REPORTED_STATE: dict[MessageState, SmsState] = {
    MessageState.DELIVERED: SmsState.DELIVERED,
    MessageState.UNDELIVERABLE: SmsState.UNDELIVERABLE,
    MessageState.EXPIRED: SmsState.EXPIRED,
    MessageState.DELETED: SmsState.DELETED,
    MessageState.REJECTED: SmsState.REJECTED,
    MessageState.UNKNOWN: SmsState.UNKNOWN,
    MessageState.FAILED: SmsState.UNDELIVERABLE,
}


#: Not yet with a carrier: DR_QUERY reads IDLE (9) until a carrier has the message.
_WAITING = frozenset({MessageState.ACCEPTED, MessageState.QUEUED})


def customer_state(
    state: MessageState, sms_state: int | None, result_desc: str | None
) -> tuple[SmsState, str]:
    """The (SMS_STATE, RESULT_DESC) a customer is told for a message in ``state``.

    Used for every report the platform enqueues and for every DR_QUERY answer (Rule 3). A final
    state is told as :data:`REPORTED_STATE` says, described by its stored ``result_desc``
    (``LOCAL_REJECTED``) or else the SMS_STATE's name. Before that: the last intermediate carrier
    state (``sms_state``), else IDLE while the message waits for a carrier and ENROUTE once a
    carrier has it.

    >>> customer_state(MessageState.REJECTED, None, "LOCAL_REJECTED")
    (<SmsState.REJECTED: 8>, 'LOCAL_REJECTED')
    >>> customer_state(MessageState.FAILED, 5, "UNDELIVERABLE")
    (<SmsState.UNDELIVERABLE: 5>, 'UNDELIVERABLE')
    >>> customer_state(MessageState.QUEUED, None, None)
    (<SmsState.IDLE: 9>, 'IDLE')
    """
    if state in FINAL_STATES:
        told = REPORTED_STATE[state]
        return told, result_desc or told.name
    if sms_state is not None:
        told = SmsState(sms_state)
    else:
        told = SmsState.IDLE if state in _WAITING else SmsState.ENROUTE
    return told, told.name


def can_transition(current: MessageState, target: MessageState) -> bool:
    return target in TRANSITIONS[current]


def sources_of(
    target: MessageState, among: Iterable[MessageState] | None = None
) -> frozenset[MessageState]:
    """The states a message may move to ``target`` from: the guard of a state write.

    ``among`` narrows it to the states an operation means to move (expiry moves only SUBMITTED
    messages); naming a state the table does not allow is a bug, raised at import time by the
    store's statement constants.

    >>> sorted(sources_of(MessageState.SUBMITTED))
    [<MessageState.QUEUED: 'queued'>]
    >>> sorted(sources_of(MessageState.EXPIRED, among=[MessageState.SUBMITTED]))
    [<MessageState.SUBMITTED: 'submitted'>]
    """
    allowed = frozenset(s for s, nxt in TRANSITIONS.items() if target in nxt)
    if among is not None:
        wanted = frozenset(among)
        if not wanted <= allowed:
            stray = ", ".join(sorted(wanted - allowed))
            raise ValueError(f"not allowed by the state table: {stray} → {target}")
        allowed = wanted
    if not allowed:
        raise ValueError(f"no state may move to {target}")
    return allowed
