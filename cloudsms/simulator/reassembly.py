"""Reassembly of concatenated messages, the way a handset (or an SMSC) puts them together.

Strategy: each submitted segment is classified by how it says it is a part:

* a User Data Header (esm_class UDHI 0x40, §5.2.12) with information element 0x00
  (8-bit reference) or 0x08 (16-bit reference), 3GPP TS 23.040 §9.2.3.24.1/.8;
* the sar_msg_ref_num / sar_total_segments / sar_segment_seqnum TLVs (§5.3.2.22–24);
* otherwise it is a whole message (short_message, or the message_payload TLV §5.3.2.32).

Parts are keyed by (system_id, source, destination, reference, total) and released as one
:class:`ReceivedMessage` when every sequence number from 1 to total has arrived; the user data is
concatenated in order and decoded once, so a UCS-2 character split across segments would still
decode. Incomplete messages are bounded (oldest dropped first): a peer cannot grow memory by
never sending the last part.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from cloudsms.smpp.constants import EsmClass
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import DataSm, SubmitSm
from cloudsms.smpp.udh import split_udh

#: Incomplete concatenated messages kept at most.
MAX_PARTIAL: Final = 10_000


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A complete message as the simulator received it."""

    system_id: str
    source_addr: str
    destination_addr: str
    data_coding: int
    #: The decoded text of all segments, in order.
    text: str
    #: How many submit_sm it took.
    segments: int
    #: The message id given to each segment, in segment order ("" when it was not answered).
    message_ids: tuple[str, ...]
    registered_delivery: int
    #: "single", "udh8", "udh16", "sar" or "payload".
    concatenation: str


class Reassembler:
    """Collects segments; :meth:`add` returns a ReceivedMessage when one is complete."""

    def __init__(self, max_partial: int = MAX_PARTIAL) -> None:
        self.max_partial = max_partial
        self._parts: OrderedDict[tuple[object, ...], dict[int, tuple[bytes, str]]] = OrderedDict()
        #: Segments dropped because their message never completed in time.
        self.dropped = 0

    @property
    def partial(self) -> int:
        """Messages waiting for more segments."""
        return len(self._parts)

    def add(
        self, system_id: str, pdu: SubmitSm | DataSm, message_id: str
    ) -> ReceivedMessage | None:
        payload = pdu.payload
        concat: tuple[int, int, int, bool] | None = None
        kind = "payload" if pdu.message_payload is not None else "single"
        if pdu.esm_class & EsmClass.UDHI:
            concat, payload = split_udh(payload)
            if concat is not None:
                kind = "udh16" if concat[3] else "udh8"
        if concat is None and (sar := pdu.sar) is not None:
            concat = (sar[0], sar[1], sar[2], False)
            kind = "sar"
        if concat is None or concat[1] <= 1:
            return self._message(system_id, pdu, [(payload, message_id)], kind)
        ref, total, seq, _ = concat
        if not 1 <= seq <= total:
            return self._message(system_id, pdu, [(payload, message_id)], kind)
        key = (system_id, pdu.source_addr, pdu.destination_addr, kind, ref, total)
        parts = self._parts.get(key)
        if parts is None:
            parts = self._parts[key] = {}
            while len(self._parts) > self.max_partial:
                _, old = self._parts.popitem(last=False)
                self.dropped += len(old)
        parts[seq] = (payload, message_id)
        if len(parts) < total:
            return None
        del self._parts[key]
        return self._message(system_id, pdu, [parts[i] for i in range(1, total + 1)], kind)

    @staticmethod
    def _message(
        system_id: str, pdu: SubmitSm | DataSm, parts: list[tuple[bytes, str]], kind: str
    ) -> ReceivedMessage:
        data = b"".join(p for p, _ in parts)
        return ReceivedMessage(
            system_id=system_id,
            source_addr=pdu.source_addr,
            destination_addr=pdu.destination_addr,
            data_coding=pdu.data_coding,
            text=decode_text(data, pdu.data_coding),
            segments=len(parts),
            message_ids=tuple(m for _, m in parts),
            registered_delivery=pdu.registered_delivery,
            concatenation=kind,
        )
