"""Inbound messages the simulator originates: a handset's text as the carrier's deliver_sm(s).

GSM 03.38 when the text fits the alphabet (data_coding 0), else UCS-2 (8); longer texts are cut
as a carrier would (``smpp.encoding.split_for_submit``) and sent as parts with a concatenation
UDH (8-bit reference, or 16-bit) and esm_class UDHI, message type default (an MO, §5.2.12).
"""

from __future__ import annotations

import random

from cloudsms.smpp.encoding import DATA_CODING, choose_encoding, split_for_submit, udh_concat
from cloudsms.smpp.pdu import DeliverSm

#: esm_class UDHI (§5.2.12).
_UDHI = 0x40


def build_mo(
    source: str,
    destination: str,
    text: str,
    *,
    reference: int | None = None,
    sixteen_bit: bool = False,
) -> list[DeliverSm]:
    """The deliver_sm PDUs (sequence numbers 0: the sender numbers them) of one MO.

    >>> [p.short_message for p in build_mo("85261234567", "1234", "hi")]
    [b'hi']
    """
    if not text:
        raise ValueError("an inbound message needs some text")
    encoding = choose_encoding(text, latin1_ok=False)
    parts = split_for_submit(text, encoding, sixteen_bit)
    if reference is None:
        reference = random.randrange(0x10000 if sixteen_bit else 0x100)
    base = {
        "sequence_number": 0,
        "source_addr_ton": 1 if source.lstrip("+").isdigit() else 5,
        "source_addr_npi": 1 if source.lstrip("+").isdigit() else 0,
        "source_addr": source.lstrip("+"),
        "dest_addr_ton": 1 if len(destination) > 8 else 0,
        "destination_addr": destination.lstrip("+"),
        "data_coding": DATA_CODING[encoding],
    }
    if len(parts) == 1:
        return [DeliverSm(**base, short_message=parts[0])]  # type: ignore[arg-type]
    return [
        DeliverSm(
            **base,  # type: ignore[arg-type]
            esm_class=_UDHI,
            short_message=udh_concat(reference, len(parts), seq, sixteen_bit) + data,
        )
        for seq, data in enumerate(parts, start=1)
    ]
