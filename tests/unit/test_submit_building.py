"""One message → the submit_sm PDUs a connector sends, for every long-message mode."""

from __future__ import annotations

import dataclasses

import pytest

from cloudsms.domain.codes import SmsState
from cloudsms.domain.dlr import message_outcome
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.submit import build_submits
from cloudsms.smpp import codec
from cloudsms.smpp.constants import EsmClass, Tag
from cloudsms.smpp.encoding import decode_text

CFG = ConnectorConfig(id=1, name="c", host="127.0.0.1", port=2775, system_id="u", password="p")
LONG_UCS2 = "您的验证码是123456，请勿向他人透露。" * 8  # 168 UCS-2 units → 3 parts


def _build(text: str, **changes: object) -> list:  # type: ignore[type-arg]
    cfg = dataclasses.replace(CFG, **changes)  # type: ignore[arg-type]
    return build_submits(
        sender="CloudSMS", destination="85267000011", text=text, encoding="ucs2"
        if any(ord(c) > 127 for c in text) else "gsm7", connector=cfg, reference=300,
    )  # fmt: skip


def test_single_segment_gsm() -> None:
    [pdu] = _build("hello")
    assert pdu.short_message == b"hello" and pdu.data_coding == 0 and pdu.esm_class == 0
    assert pdu.registered_delivery == 1
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (5, 0)  # alphanumeric sender
    assert pdu.destination_addr == "85267000011"
    assert codec.decode(codec.encode(pdu)) == pdu


def test_udh8_concatenation_reassembles() -> None:
    pdus = _build(LONG_UCS2)
    assert len(pdus) == 3
    texts = []
    for seq, pdu in enumerate(pdus, start=1):
        assert pdu.esm_class & EsmClass.UDHI and pdu.data_coding == 8
        assert pdu.short_message[:6] == bytes([5, 0, 3, 300 % 256, 3, seq])
        texts.append(decode_text(pdu.short_message[6:], 8))
    assert "".join(texts) == LONG_UCS2


def test_udh16_and_sar_and_payload() -> None:
    udh16 = _build(LONG_UCS2, long_mode="udh16")
    assert udh16[0].short_message[:7] == bytes([6, 8, 4, 1, 44, len(udh16), 1])
    sar = _build(LONG_UCS2, long_mode="sar")
    assert [p.sar for p in sar] == [(300, 3, 1), (300, 3, 2), (300, 3, 3)]
    assert all(p.esm_class == 0 for p in sar)
    [payload] = _build(LONG_UCS2, long_mode="payload")
    assert payload.short_message == b""
    assert payload.tlv(Tag.MESSAGE_PAYLOAD) is not None
    assert decode_text(payload.payload, 8) == LONG_UCS2


def test_gsm_falls_back_to_ucs2_without_dcs0() -> None:
    [pdu] = _build("hello", data_codings=frozenset({8}))
    assert pdu.data_coding == 8 and decode_text(pdu.short_message, 8) == "hello"


@pytest.mark.parametrize(
    ("segments", "states", "outcome"),
    [
        (1, [SmsState.DELIVERED], SmsState.DELIVERED),
        (2, [SmsState.DELIVERED], None),
        (2, [SmsState.DELIVERED, SmsState.ENROUTE], None),
        (2, [SmsState.DELIVERED, SmsState.DELIVERED], SmsState.DELIVERED),
        (3, [SmsState.UNDELIVERABLE], SmsState.UNDELIVERABLE),
        (2, [SmsState.DELIVERED, SmsState.EXPIRED], SmsState.EXPIRED),
        (1, [SmsState.ACCEPTED], None),
        (1, [None], None),
    ],
)
def test_message_outcome(
    segments: int, states: list[SmsState | None], outcome: SmsState | None
) -> None:
    assert message_outcome(segments, states) == outcome
