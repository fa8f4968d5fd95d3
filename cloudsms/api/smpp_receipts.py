"""Receipts over SMPP: deliver_sm to the customer's bound RX / TRX sessions, from the outbox.

Strategy: the reports of messages submitted over SMPP with registered_delivery wait in the
report outbox (``cloudsms.storage.smpp_receipt_ops``), enqueued with the state change they
report, so none is lost while no session is bound. :class:`ReceiptSender` polls (and is woken
when a receiving session binds), and after a round that found receipts starts the next one at
once (rounds at the poll interval alone capped a session at ``window`` receipts per poll: 20/s,
``bench/smpp_customer.py``): for the accounts with a receiving session, it claims as many due
receipts as the sessions' windows have room for, sends each as a deliver_sm (SMPP 3.4
Appendix B text plus the ``receipted_message_id`` and ``message_state`` TLVs) on the least busy
session of the account — any of them, not necessarily the one the message was submitted on —
and settles the rows once answered: ESME_ROK is done; an error status, no answer in time or a
lost session is retried with back-off. Rounds run one after the other, so per SMS_UID the
states go out in order (the claim never takes a later state while an earlier one is undone).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any

from cloudsms.api.smpp_outbox import OutboxSender, Outcome, Receivers
from cloudsms.domain.codes import SmsState
from cloudsms.domain.dlr import INTERMEDIATE
from cloudsms.domain.smpp_accounts import RECEIPT_ON_FAILURE, SmppAccount, SmppReceipt
from cloudsms.smpp.constants import EsmClass, Tag
from cloudsms.smpp.pdu import DeliverSm
from cloudsms.smpp.tlv import Tlv
from cloudsms.storage.interfaces import SmppReceiptStore
from cloudsms.transport.server import SmscConnection

#: SMS_STATE → Appendix B ``stat`` word (IDLE reads as ENROUTE).
_STAT = {
    SmsState.ENROUTE: "ENROUTE", SmsState.DELIVERED: "DELIVRD", SmsState.EXPIRED: "EXPIRED",
    SmsState.DELETED: "DELETED", SmsState.UNDELIVERABLE: "UNDELIV", SmsState.ACCEPTED: "ACCEPTD",
    SmsState.UNKNOWN: "UNKNOWN", SmsState.REJECTED: "REJECTD", SmsState.IDLE: "ENROUTE",
}  # fmt: skip
_OK_STATES = frozenset({SmsState.DELIVERED, *INTERMEDIATE})


def receipt_pdu(r: SmppReceipt, sequence_number: int) -> DeliverSm:
    """The deliver_sm receipt of one message (Appendix B text, times in UTC).

    It names the message by the message_id its submit's answer gave (a submit_multi's
    recipients share one; source_addr, the recipient, tells them apart).
    """
    state = (
        SmsState(r.sms_state) if r.sms_state in SmsState._value2member_map_ else SmsState.UNKNOWN
    )
    snippet = "".join(c if " " <= c <= "~" else "?" for c in r.content[:20])
    message_id = r.message_id or r.sms_uid
    body = (
        f"id:{message_id} sub:001 dlvrd:{'001' if state is SmsState.DELIVERED else '000'}"
        f" submit date:{_date(r.created_ms)} done date:{_date(r.report_ms)}"
        f" stat:{_STAT[state]} err:{'000' if state in _OK_STATES else '001'} text:{snippet}"
    )
    return DeliverSm(
        sequence_number=sequence_number,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=f"{r.country_code}{r.dest_msisdn}",
        destination_addr=r.sender,
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=body.encode("ascii", "replace"),
        tlvs=(
            Tlv(Tag.RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),
            # SMPP's message_state numbers ENROUTE..REJECTED as SMS_STATE 1..8 does.
            Tlv(Tag.MESSAGE_STATE, bytes((1 if state is SmsState.IDLE else int(state),))),
        ),
    )


def _date(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%y%m%d%H%M")


class ReceiptSender(OutboxSender[SmppReceipt]):
    """Delivers due receipts to bound sessions, windowed, retried until answered."""

    name = "smpp-receipts"
    what = "receipt"

    def __init__(self, store: SmppReceiptStore, receivers: Receivers, **options: Any) -> None:
        super().__init__(receivers, **options)
        self.store = store

    def key(self, row: SmppReceipt) -> int:
        return row.account_id

    def claim(
        self, keys: list[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppReceipt]:
        return self.store.claim_smpp_receipts(keys, now_ms=now_ms, lease_ms=lease_ms, limit=limit)

    def settle(
        self,
        *,
        now_ms: int,
        done: Sequence[int],
        skipped: Sequence[tuple[int, str]],
        retry: Sequence[tuple[int, int, str]],
    ) -> None:
        self.store.record_smpp_receipts(now_ms=now_ms, done=done, skipped=skipped, retry=retry)

    async def deliver(
        self, row: SmppReceipt, account: SmppAccount, conns: Sequence[SmscConnection]
    ) -> Outcome:
        state = row.sms_state
        if row.mode == RECEIPT_ON_FAILURE and state == SmsState.DELIVERED:
            return "skipped", "no receipt: registered_delivery asked for failures only"
        if state in INTERMEDIATE and not account.intermediate_receipts:
            return "skipped", "no receipt: intermediate state, not asked for by the account"
        build: Callable[[int], DeliverSm] = functools.partial(receipt_pdu, row)
        return await self.send(conns, [build])
