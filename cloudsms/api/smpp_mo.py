"""Inbound messages (MO) over SMPP: deliver_sm to the customer's bound RX / TRX sessions.

Strategy: an MO routed to a customer that has an enabled SMPP account taking MOs
(``SmppAccount.mo``) is stored with the channel ``smpp`` (``storage.inbound_ops``; decided
once, when it is stored), so the HTTP MO pusher never claims it. :class:`MoSender` is an
``api.smpp_outbox.OutboxSender``, the receipts' machinery: for the customers with a receiving
session on an account taking MOs it claims their due MOs (``storage.smpp_mo_ops``), sends each
on the least busy of those sessions (any of the customer's accounts taking MOs) and settles it
once answered; refused, unanswered or without a session bound, it waits in the store and is
tried again with back-off, never given up.

One MO is one deliver_sm (esm_class 0): source_addr the handset, destination_addr the number
it was sent to, the text in the GSM 7-bit default alphabet (data_coding 0, unpacked) when it
fits, else UCS-2 (data_coding 8). A text longer than one segment goes out as parts with a
concatenation UDH (esm_class UDHI, 8-bit reference from the MO's row id, the seed tables'
153 / 67 units per part: ``smpp.encoding``), in order on one session; the MO is done when every
part is answered ESME_ROK, and sent whole again (same reference) otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from cloudsms.api.smpp_outbox import OutboxSender, Outcome, Receivers, Target
from cloudsms.domain.smpp_accounts import SmppAccount, SmppMo
from cloudsms.smpp.constants import EsmClass
from cloudsms.smpp.encoding import DATA_CODING, Encoding, is_gsm7, split_for_submit, udh_concat
from cloudsms.smpp.pdu import DeliverSm
from cloudsms.storage.interfaces import SmppMoStore
from cloudsms.transport.server import SmscConnection


def address(number: str) -> tuple[int, int, str]:
    """(ton, npi, addr) of an MO's number: international digits (``+`` dropped) as TON 1 NPI 1,
    a short code (8 digits or fewer) as TON 0 NPI 1, anything else alphanumeric (TON 5)."""
    digits = number.removeprefix("+")
    if digits.isdigit() and digits.isascii():
        return (1 if number.startswith("+") or len(digits) > 8 else 0), 1, digits
    return 5, 0, number


def mo_pdus(mo: SmppMo) -> list[Callable[[int], DeliverSm]]:
    """The deliver_sm of one MO, each built from its sequence number (one, or the parts)."""
    encoding: Encoding = "gsm7" if is_gsm7(mo.text) else "ucs2"
    parts = split_for_submit(mo.text, encoding)
    src_ton, src_npi, source = address(mo.source)
    dst_ton, dst_npi, destination = address(mo.destination)
    common: dict[str, Any] = {
        "source_addr_ton": src_ton, "source_addr_npi": src_npi, "source_addr": source,
        "dest_addr_ton": dst_ton, "dest_addr_npi": dst_npi, "destination_addr": destination,
        "data_coding": DATA_CODING[encoding],
    }  # fmt: skip
    if len(parts) == 1:
        return [functools.partial(_pdu, common, 0, parts[0])]
    ref = mo.outbox_id & 0xFF
    return [
        functools.partial(_pdu, common, EsmClass.UDHI, udh_concat(ref, len(parts), seq) + payload)
        for seq, payload in enumerate(parts, start=1)
    ]


def _pdu(common: dict[str, Any], esm_class: int, body: bytes, sequence_number: int) -> DeliverSm:
    return DeliverSm(
        sequence_number=sequence_number, esm_class=esm_class, short_message=body, **common
    )


class MoSender(OutboxSender[SmppMo]):
    """Delivers due MOs to the customers' bound sessions, windowed, retried until answered."""

    name = "smpp-mo"
    what = "mo"

    def __init__(self, store: SmppMoStore, receivers: Receivers, **options: Any) -> None:
        super().__init__(receivers, **options)
        self.store = store

    def targets(self) -> dict[int, Target]:
        """customer id → (one of its accounts taking MOs, their receiving sessions)."""
        found: dict[int, Target] = {}
        for account, conns in self.source.receivers().values():
            if account.mo and account.enabled:
                found.setdefault(account.customer_id, (account, []))[1].extend(conns)
        return found

    def key(self, row: SmppMo) -> int:
        return row.customer_id

    def claim(self, keys: list[int], *, now_ms: int, lease_ms: int, limit: int) -> list[SmppMo]:
        return self.store.claim_smpp_mo(keys, now_ms=now_ms, lease_ms=lease_ms, limit=limit)

    def settle(
        self,
        *,
        now_ms: int,
        done: Sequence[int],
        skipped: Sequence[tuple[int, str]],
        retry: Sequence[tuple[int, int, str]],
    ) -> None:
        self.store.record_smpp_mo(now_ms=now_ms, done=done, retry=retry)

    async def deliver(
        self, row: SmppMo, account: SmppAccount, conns: Sequence[SmscConnection]
    ) -> Outcome:
        return await self.send(conns, mo_pdus(row))
