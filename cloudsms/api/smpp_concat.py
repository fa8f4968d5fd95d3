"""Concatenated submit_sm or submit_multi (UDH 8/16-bit or SAR TLVs), held until whole.

Strategy: a part is not a message, and a message is accepted only whole: :class:`Concatenations`
holds each part (and its unanswered PDU) under (account, command, source, destination, kind,
reference, total) until every sequence number has arrived, then hands back one merged PDU
(the parts' user data joined in order, without UDH or SAR TLVs, in message_payload) for the
server to accept like any other; every part is then answered with the same command_status and
the message's SMS_UID (and, for submit_multi, the same unsuccess_sme). A submit_multi's
destination is its whole dest_address list, in order: parts whose lists differ are different
messages. So no part is answered before the whole message is durably stored.
Parts of a message that does not complete within ``timeout_s`` are answered ESME_RSUBMITFAIL
and dropped; incomplete messages are bounded per account (more: ESME_RTHROTTLED).

An ESME that waits for each part's answer before sending the next (a window of one) cannot send
concatenated parts this way: it should put the whole text in message_payload.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudsms.api.smpp_submit import Refused
from cloudsms.domain.content import MAX_SEGMENTS
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.constants import EsmClass, Tag
from cloudsms.smpp.pdu import SubmitMulti, SubmitSm
from cloudsms.smpp.tlv import Tlv
from cloudsms.smpp.udh import split_udh
from cloudsms.transport.server import SmscConnection

#: A submit that can come in parts.
Submit = SubmitSm | SubmitMulti
#: A held part: the session it came on, its submit_sm or submit_multi, its user data (UDH removed).
Part = tuple[SmscConnection, Submit, bytes]
_SAR_TAGS = frozenset({Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM})


@dataclass(slots=True)
class _Group:
    total: int
    parts: dict[int, Part] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None


class Concatenations:
    """Incomplete concatenated messages of every account, in memory."""

    def __init__(
        self,
        on_expired: Callable[[list[Part], str], None],
        *,
        timeout_s: float = 60.0,
        max_per_account: int = 1000,
    ) -> None:
        self.on_expired = on_expired
        self.timeout_s = timeout_s
        self.max_per_account = max_per_account
        self._groups: dict[tuple[object, ...], _Group] = {}
        self._per_account: dict[int, int] = {}

    @property
    def waiting(self) -> int:
        """Incomplete messages held now."""
        return len(self._groups)

    def add(
        self, account_id: int, conn: SmscConnection, pdu: Submit
    ) -> tuple[Submit, list[Part]] | None:
        """Hold one part; the merged PDU and every part once the message is whole.

        Raises :class:`Refused` for a part that cannot belong to a message.
        """
        kind, ref, total, seq, data = _concat_of(pdu)
        if total == 1:
            return _merged(pdu, data), [(conn, pdu, data)]
        key = (account_id, pdu.command_id, pdu.source_addr, _destination(pdu), kind, ref, total)
        group = self._groups.get(key)
        if group is None:
            if self._per_account.get(account_id, 0) >= self.max_per_account:
                raise Refused(
                    S.ESME_RTHROTTLED,
                    f"{self.max_per_account} concatenated messages of this account are incomplete",
                )
            group = self._groups[key] = _Group(total)
            self._per_account[account_id] = self._per_account.get(account_id, 0) + 1
            group.timer = asyncio.get_running_loop().call_later(
                self.timeout_s, self._expire, key, account_id
            )
        if seq in group.parts:
            raise Refused(S.ESME_RSUBMITFAIL, f"part {seq} of {total} was received already")
        first = next(iter(group.parts.values()), None)
        if first is not None and first[1].data_coding != pdu.data_coding:
            raise Refused(S.ESME_RSUBMITFAIL, "the parts of one message differ in data_coding")
        group.parts[seq] = (conn, pdu, data)
        if len(group.parts) < total:
            return None
        self._forget(key, account_id)
        parts = [group.parts[i] for i in range(1, total + 1)]
        return _merged(pdu, b"".join(p[2] for p in parts), first_pdu=parts[0][1]), parts

    def _expire(self, key: tuple[object, ...], account_id: int) -> None:
        group = self._groups.get(key)
        if group is None:
            return
        self._forget(key, account_id)
        self.on_expired(
            list(group.parts.values()),
            f"{len(group.parts)} of {group.total} parts arrived within {self.timeout_s:g} s",
        )

    def _forget(self, key: tuple[object, ...], account_id: int) -> None:
        group = self._groups.pop(key)
        if group.timer is not None:
            group.timer.cancel()
        left = self._per_account.get(account_id, 1) - 1
        if left:
            self._per_account[account_id] = left
        else:
            self._per_account.pop(account_id, None)

    def clear(self) -> list[Part]:
        """Drop everything held (stopping): the parts, to be answered."""
        parts = [p for g in self._groups.values() for p in g.parts.values()]
        for group in self._groups.values():
            if group.timer is not None:
                group.timer.cancel()
        self._groups.clear()
        self._per_account.clear()
        return parts


def is_part(pdu: Submit) -> bool:
    """A submit that says it is part of a concatenated message (UDHI or SAR TLVs)."""
    return bool(pdu.esm_class & EsmClass.UDHI) or any(t.tag in _SAR_TAGS for t in pdu.tlvs)


def _destination(pdu: Submit) -> object:
    """What a part is addressed to: submit_multi's whole list, in order (hashable)."""
    if isinstance(pdu, SubmitSm):
        return pdu.destination_addr
    return pdu.dest_addresses


def _concat_of(pdu: Submit) -> tuple[str, int, int, int, bytes]:
    """(kind, reference, total, sequence, user data) of a part; Refused when malformed."""
    if pdu.message_payload is not None:
        raise Refused(S.ESME_RINVMSGLEN, "a concatenated part must carry its text in short_message")
    if pdu.esm_class & EsmClass.UDHI:
        concat, data = split_udh(pdu.short_message)
        if concat is None:
            raise Refused(
                S.ESME_RINVESMCLASS, "UDHI is set but the UDH has no concatenation element"
            )
        ref, total, seq, sixteen = concat
        kind = "udh16" if sixteen else "udh8"
    else:
        sar = pdu.sar
        if sar is None:
            raise Refused(S.ESME_RMISSINGTLV, "sar_msg_ref_num, sar_total_segments and"
                          " sar_segment_seqnum must come together")  # fmt: skip
        (ref, total, seq), data, kind = sar, pdu.short_message, "sar"
    if not 1 <= seq <= total or total > MAX_SEGMENTS:
        raise Refused(
            S.ESME_RSUBMITFAIL,
            f"part {seq} of {total}: parts are numbered 1..total, at most {MAX_SEGMENTS}",
        )
    return kind, ref, total, seq, data


def _merged(last: Submit, data: bytes, *, first_pdu: Submit | None = None) -> Submit:
    """One whole submit_sm or submit_multi: the text in message_payload, no UDH, no SAR TLVs.

    registered_delivery is the first part's (ESMEs ask on the first, or on every part).
    """
    first = first_pdu or last
    return dataclasses.replace(
        last,
        esm_class=last.esm_class & ~EsmClass.UDHI,
        short_message=b"",
        registered_delivery=first.registered_delivery or last.registered_delivery,
        tlvs=(
            *(t for t in last.tlvs if t.tag not in _SAR_TAGS and t.tag != Tag.MESSAGE_PAYLOAD),
            Tlv(Tag.MESSAGE_PAYLOAD, data),
        ),
    )
