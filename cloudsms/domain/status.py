"""The message state machine.

Rule 1: every transition a message may take is in TRANSITIONS below; the store refuses others.
Rule 2: a final state never changes again (a late carrier receipt is recorded, not applied).

    ACCEPTED ──(dispatcher claims)──▶ QUEUED ──(submit_sm_resp OK)──▶ SUBMITTED ──(receipt)──▶ final
       │                                │ ▲
       │                                └─┘ back to ACCEPTED to retry (throttled, link down)
       └──(LOCAL_REJECTED at acceptance)──▶ REJECTED
    QUEUED ──(permanent carrier error / no carrier)──▶ FAILED
    SUBMITTED ──(no receipt within 25 h)──▶ EXPIRED

Final states map to the SMS_STATE of the report (SPEC §5); FAILED is reported as UNDELIVERABLE.
"""

from __future__ import annotations

import enum

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


_FINAL_FROM_SUBMITTED = {
    MessageState.DELIVERED,
    MessageState.UNDELIVERABLE,
    MessageState.EXPIRED,
    MessageState.DELETED,
    MessageState.REJECTED,
    MessageState.UNKNOWN,
}

TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.ACCEPTED: frozenset({MessageState.QUEUED, MessageState.REJECTED}),
    MessageState.QUEUED: frozenset(
        {MessageState.SUBMITTED, MessageState.ACCEPTED, MessageState.FAILED, MessageState.REJECTED}
    ),
    MessageState.SUBMITTED: frozenset(_FINAL_FROM_SUBMITTED),
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


def can_transition(current: MessageState, target: MessageState) -> bool:
    return target in TRANSITIONS[current]
