"""How an inbound message becomes the deliver_sm a customer's ESME receives (``api.smpp_mo``)."""

from __future__ import annotations

from cloudsms.api.smpp_mo import address, mo_pdus
from cloudsms.domain.smpp_accounts import SmppMo
from cloudsms.smpp.codec import decode, encode
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import DeliverSm


def _mo(text: str, source: str = "+85261234567", destination: str = "12345") -> SmppMo:
    return SmppMo(outbox_id=300, mo_uid="MO1", customer_id=1, source=source,
                  destination=destination, text=text, attempts=0)  # fmt: skip


def _wire(mo: SmppMo) -> list[DeliverSm]:
    """Each PDU through the codec, as the ESME reads it."""
    out = []
    for n, build in enumerate(mo_pdus(mo), start=1):
        pdu = decode(encode(build(n)))
        assert isinstance(pdu, DeliverSm) and pdu.sequence_number == n
        out.append(pdu)
    return out


def test_addresses_international_short_code_and_alphanumeric() -> None:
    assert address("+85261234567") == (1, 1, "85261234567")
    assert address("85261234567") == (1, 1, "85261234567")
    assert address("12345") == (0, 1, "12345")
    assert address("+12345") == (1, 1, "12345")
    assert address("Acme") == (5, 0, "Acme")


def test_short_texts_are_one_deliver_sm_gsm_or_ucs2() -> None:
    [gsm] = _wire(_mo("Hi [there] €"))
    assert (gsm.esm_class, gsm.data_coding, gsm.source_addr, gsm.destination_addr) == (
        0, 0, "85261234567", "12345")  # fmt: skip
    assert (gsm.source_addr_ton, gsm.dest_addr_ton) == (1, 0)
    assert decode_text(gsm.short_message, 0) == "Hi [there] €"
    [ucs2] = _wire(_mo("好的 😀"))
    assert (ucs2.data_coding, ucs2.short_message) == (8, "好的 😀".encode("utf-16-be"))


def test_a_long_text_goes_in_parts_with_one_reference_and_no_split_character() -> None:
    text = "a" * 66 + "😀" + "b" * 80  # the emoji (2 units) would straddle the first boundary
    parts = _wire(_mo(text))
    assert len(parts) == 3 and {p.esm_class for p in parts} == {0x40}
    udhs = [p.short_message[:6] for p in parts]
    assert udhs == [bytes((5, 0, 3, 300 & 0xFF, 3, seq)) for seq in (1, 2, 3)]
    assert "".join(decode_text(p.short_message[6:], 8) for p in parts) == text
    assert max(len(p.short_message) for p in parts) <= 140
