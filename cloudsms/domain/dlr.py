"""From carrier receipts per segment to one message outcome (SPEC §5).

Rules:
1. ENROUTE, ACCEPTED and IDLE are intermediate: they update what the customer can query and are
   pushed only to customers who opted in; every other SMS_STATE is final.
2. A multi-segment message is DELIVERED only when every one of its segments is.
3. A message fails as soon as any segment reaches a final state other than DELIVERED: the first
   failing segment's state is the message's.
4. A message already in a final state never changes again: a late receipt is recorded only.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloudsms.domain.codes import SmsState
from cloudsms.domain.status import MessageState

#: The SMS_STATE each receipt ``stat`` word of SMPP 3.4 Appendix B means to a customer (SPEC §5).
STAT_TO_SMS_STATE: dict[str, SmsState] = {
    "ENROUTE": SmsState.ENROUTE,
    "DELIVRD": SmsState.DELIVERED,
    "EXPIRED": SmsState.EXPIRED,
    "DELETED": SmsState.DELETED,
    "UNDELIV": SmsState.UNDELIVERABLE,
    "ACCEPTD": SmsState.ACCEPTED,
    "UNKNOWN": SmsState.UNKNOWN,
    "REJECTD": SmsState.REJECTED,
}

INTERMEDIATE = frozenset({SmsState.ENROUTE, SmsState.ACCEPTED, SmsState.IDLE})

#: The machine state a final carrier SMS_STATE puts a message in.
FINAL_MESSAGE_STATE: dict[SmsState, MessageState] = {
    SmsState.DELIVERED: MessageState.DELIVERED,
    SmsState.EXPIRED: MessageState.EXPIRED,
    SmsState.DELETED: MessageState.DELETED,
    SmsState.UNDELIVERABLE: MessageState.UNDELIVERABLE,
    SmsState.UNKNOWN: MessageState.UNKNOWN,
    SmsState.REJECTED: MessageState.REJECTED,
}


def sms_state_of(stat: str) -> SmsState:
    """The SMS_STATE of a receipt whose (normalised) ``stat`` word is ``stat``; UNKNOWN if odd."""
    return STAT_TO_SMS_STATE.get(stat, SmsState.UNKNOWN)


def is_final(state: SmsState) -> bool:
    return state not in INTERMEDIATE


def message_outcome(segments: int, part_states: Iterable[SmsState | None]) -> SmsState | None:
    """The message's final SMS_STATE from its segments' latest states, or None while open.

    >>> message_outcome(2, [SmsState.DELIVERED, None])
    >>> message_outcome(2, [SmsState.DELIVERED, SmsState.DELIVERED])
    <SmsState.DELIVERED: 2>
    >>> message_outcome(3, [SmsState.ENROUTE, SmsState.UNDELIVERABLE])
    <SmsState.UNDELIVERABLE: 5>
    """
    delivered = 0
    for state in part_states:
        if state is None or state in INTERMEDIATE:
            continue
        if state is not SmsState.DELIVERED:
            return state
        delivered += 1
    return SmsState.DELIVERED if delivered >= segments else None
