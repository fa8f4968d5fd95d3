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

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cloudsms.domain.codes import SmsState
from cloudsms.domain.dlr import INTERMEDIATE
from cloudsms.domain.smpp_accounts import RECEIPT_ON_FAILURE, SmppAccount, SmppReceipt
from cloudsms.smpp.constants import EsmClass, Tag
from cloudsms.smpp.pdu import DeliverSm
from cloudsms.smpp.tlv import Tlv
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.storage.interfaces import SmppReceiptStore
from cloudsms.transport.server import SmscConnection

log = logging.getLogger("cloudsms.smpp")

#: SMS_STATE → Appendix B ``stat`` word (IDLE reads as ENROUTE).
_STAT = {
    SmsState.ENROUTE: "ENROUTE", SmsState.DELIVERED: "DELIVRD", SmsState.EXPIRED: "EXPIRED",
    SmsState.DELETED: "DELETED", SmsState.UNDELIVERABLE: "UNDELIV", SmsState.ACCEPTED: "ACCEPTD",
    SmsState.UNKNOWN: "UNKNOWN", SmsState.REJECTED: "REJECTD", SmsState.IDLE: "ENROUTE",
}  # fmt: skip
_OK_STATES = frozenset({SmsState.DELIVERED, *INTERMEDIATE})


class Receivers(Protocol):
    """Where the receipts go: the bound sessions able to receive, by account."""

    def receivers(self) -> dict[int, tuple[SmppAccount, list[SmscConnection]]]: ...
    def receipt_sent(self, conn: SmscConnection) -> None: ...


def receipt_pdu(r: SmppReceipt, sequence_number: int) -> DeliverSm:
    """The deliver_sm receipt of one message (Appendix B text, times in UTC)."""
    state = (
        SmsState(r.sms_state) if r.sms_state in SmsState._value2member_map_ else SmsState.UNKNOWN
    )
    snippet = "".join(c if " " <= c <= "~" else "?" for c in r.content[:20])
    body = (
        f"id:{r.sms_uid} sub:001 dlvrd:{'001' if state is SmsState.DELIVERED else '000'}"
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
            Tlv(Tag.RECEIPTED_MESSAGE_ID, r.sms_uid.encode("ascii") + b"\0"),
            # SMPP's message_state numbers ENROUTE..REJECTED as SMS_STATE 1..8 does.
            Tlv(Tag.MESSAGE_STATE, bytes((1 if state is SmsState.IDLE else int(state),))),
        ),
    )


def _date(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%y%m%d%H%M")


class ReceiptSender:
    """Delivers due receipts to bound sessions, windowed, retried until answered."""

    def __init__(
        self,
        store: SmppReceiptStore,
        receivers: Receivers,
        *,
        poll_s: float = 0.5,
        window: int = 10,
        response_timeout_s: float = 10.0,
        lease_s: float = 60.0,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.source = receivers
        self.poll_s = poll_s
        self.window = window
        self.response_timeout_s = response_timeout_s
        self.lease_ms = int(lease_s * 1000)
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[SmscConnection, int] = {}
        #: Where the store calls run (``cloudsms.storage.gate``; the composition root sets it).
        self.gate: Gate = ThreadGate()

    def wake(self) -> None:
        """Look for receipts now (a receiving session has just bound)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="smpp-receipts")

    async def stop(self) -> None:
        """Stop sending; rows claimed but not settled become due again when their lease ends."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        busy = False
        while True:
            if busy:  # the last round found receipts: more are likely due, look again at once
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
            self._wake.clear()
            try:
                busy = await self.round() > 0
            except Exception:  # the next round tries again; nothing is lost (the outbox)
                log.exception("sending SMPP receipts failed")
                busy = False

    async def round(self) -> int:
        """One claim and its deliveries; how many receipts were settled."""
        receivers = self.source.receivers()
        if not receivers:
            return 0
        room = sum(self.window for _, conns in receivers.values() for _ in conns)
        now_ms = int(self._clock() * 1000)
        claimed = await self.gate.run(
            functools.partial(
                self.store.claim_smpp_receipts,
                sorted(receivers),
                now_ms=now_ms,
                lease_ms=self.lease_ms,
                limit=room,
            )
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(
            *(self._deliver(r, *receivers[r.account_id]) for r in claimed)
        )
        done = [
            r.outbox_id for r, (kind, _) in zip(claimed, outcomes, strict=True) if kind == "done"
        ]
        skipped = [
            (r.outbox_id, why) for r, (kind, why) in zip(claimed, outcomes, strict=True)
            if kind == "skipped"
        ]  # fmt: skip
        now = self._clock()
        retry = [
            (r.outbox_id, int((now + self._delay(r.attempts)) * 1000), why)
            for r, (kind, why) in zip(claimed, outcomes, strict=True)
            if kind == "retry"
        ]
        await self.gate.run(
            functools.partial(
                self.store.record_smpp_receipts,
                now_ms=int(now * 1000),
                done=done,
                skipped=skipped,
                retry=retry,
            )
        )
        return len(claimed)

    def _delay(self, attempts: int) -> float:
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** min(attempts, 16)))

    async def _deliver(
        self, r: SmppReceipt, account: SmppAccount, conns: Sequence[SmscConnection]
    ) -> tuple[str, str]:
        """("done" | "skipped" | "retry", why) for one receipt."""
        state = r.sms_state
        if r.mode == RECEIPT_ON_FAILURE and state == SmsState.DELIVERED:
            return "skipped", "no receipt: registered_delivery asked for failures only"
        if state in INTERMEDIATE and not account.intermediate_receipts:
            return "skipped", "no receipt: intermediate state, not asked for by the account"
        conn = self._least_busy(c for c in conns if c.is_open and c.can_receive)
        if conn is None:
            return "retry", "no receiving session bound"
        self._inflight[conn] = self._inflight.get(conn, 0) + 1
        try:
            async with asyncio.timeout(self.response_timeout_s):
                resp = await conn.send_request(receipt_pdu(r, conn.session.sequence.next()))
        except TimeoutError:
            return "retry", f"no deliver_sm_resp within {self.response_timeout_s:g} s"
        except Exception as exc:  # the session went away, or cannot send now
            return "retry", f"deliver_sm not answered: {type(exc).__name__}: {exc}"
        finally:
            left = self._inflight.pop(conn, 1) - 1
            if left:
                self._inflight[conn] = left
        self.source.receipt_sent(conn)
        if resp.command_status:
            return (
                "retry",
                f"deliver_sm_resp refused it (command_status 0x{resp.command_status:08X})",
            )
        return "done", ""

    def _least_busy(self, conns: Iterable[SmscConnection]) -> SmscConnection | None:
        return min(conns, key=lambda c: self._inflight.get(c, 0), default=None)
