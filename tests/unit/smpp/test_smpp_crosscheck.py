"""Cross-check the codec against an independent implementation: the PyPI ``smpp.pdu3`` package.

Known limits of smpp.pdu3 0.6 (not ours): it cannot decode replace_sm (KeyError 'sm_length')
nor submit_multi / submit_multi_resp, so those are covered by our own round trips only.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

pdu3 = pytest.importorskip("smpp.pdu.pdu_encoding")
from smpp.pdu import operations, pdu_types  # noqa: E402

from cloudsms.smpp import (  # noqa: E402
    BindTransceiver,
    BindTransmitterResp,
    DataSm,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    QuerySm,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Tlv,
    Unbind,
    decode,
    encode,
)

ENCODER = pdu3.PDUEncoder()


def theirs_decode(data: bytes) -> Any:
    return ENCODER.decode(io.BytesIO(data))


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def test_our_bind_transceiver_decodes_in_pdu3() -> None:
    ours = BindTransceiver(
        sequence_number=11,
        system_id="cloudsms",
        password="pw",
        system_type="VMA",
        addr_ton=1,
        addr_npi=1,
        address_range="^65",
    )
    theirs = theirs_decode(encode(ours))
    assert theirs.id == pdu_types.CommandId.bind_transceiver
    assert theirs.seqNum == 11
    p = theirs.params
    assert (p["system_id"], p["password"], p["system_type"]) == (b"cloudsms", b"pw", b"VMA")
    assert p["interface_version"] == 0x34
    assert p["addr_ton"] == pdu_types.AddrTon.INTERNATIONAL
    assert p["address_range"] == b"^65"


def test_our_submit_sm_decodes_in_pdu3() -> None:
    ours = SubmitSm(
        sequence_number=1234,
        source_addr_ton=5,
        source_addr="CloudSMS",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="6591234567",
        registered_delivery=1,
        data_coding=8,
        short_message="你好".encode("utf-16-be"),
        tlvs=(Tlv.uint16(Tag.USER_MESSAGE_REFERENCE, 77),),
    )
    theirs = theirs_decode(encode(ours))
    p = theirs.params
    assert theirs.id == pdu_types.CommandId.submit_sm and theirs.seqNum == 1234
    assert p["source_addr"] == b"CloudSMS" and p["destination_addr"] == b"6591234567"
    assert p["source_addr_ton"] == pdu_types.AddrTon.ALPHANUMERIC
    assert p["dest_addr_npi"] == pdu_types.AddrNpi.ISDN
    assert p["short_message"] == "你好".encode("utf-16-be")
    assert p["data_coding"].scheme == pdu_types.DataCodingScheme.DEFAULT
    assert p["data_coding"].schemeData == pdu_types.DataCodingDefault.UCS2
    assert p["user_message_reference"] == 77
    assert p["registered_delivery"].receipt == (
        pdu_types.RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED
    )


def test_our_deliver_sm_receipt_decodes_in_pdu3() -> None:
    ours = DeliverSm(
        sequence_number=5,
        source_addr="6591234567",
        destination_addr="CloudSMS",
        esm_class=0x04,
        short_message=b"id:abc sub:001 dlvrd:001 stat:DELIVRD err:000 text:",
        tlvs=(Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "abc"), Tlv.uint8(Tag.MESSAGE_STATE, 2)),
    )
    theirs = theirs_decode(encode(ours))
    p = theirs.params
    assert theirs.id == pdu_types.CommandId.deliver_sm
    assert p["esm_class"].type == pdu_types.EsmClassType.SMSC_DELIVERY_RECEIPT
    assert as_bytes(p["receipted_message_id"]) == b"abc"
    assert p["message_state"] == pdu_types.MessageState.DELIVERED
    assert p["short_message"] == ours.short_message


@pytest.mark.parametrize(
    ("ours", "command"),
    [
        (EnquireLink(sequence_number=0x7FFFFFFF), "enquire_link"),
        (EnquireLinkResp(sequence_number=3), "enquire_link_resp"),
        (Unbind(sequence_number=4), "unbind"),
        (SubmitSmResp(sequence_number=5, message_id="0A1B"), "submit_sm_resp"),
        (BindTransmitterResp(sequence_number=6, system_id="SMSC"), "bind_transmitter_resp"),
        (QuerySm(sequence_number=7, message_id="q", source_addr="s"), "query_sm"),
        (
            DataSm(
                sequence_number=8,
                source_addr="a",
                destination_addr="b",
                tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"z" * 600),),
            ),
            "data_sm",
        ),
    ],
)
def test_simple_pdus_decode_in_pdu3(ours: Any, command: str) -> None:
    theirs = theirs_decode(encode(ours))
    assert theirs.id == getattr(pdu_types.CommandId, command)
    assert theirs.seqNum == ours.sequence_number
    if "message_id" in theirs.params:
        assert as_bytes(theirs.params["message_id"]) == ours.message_id.encode()
    if "message_payload" in theirs.params:
        assert theirs.params["message_payload"] == b"z" * 600


def test_pdu3_submit_sm_decodes_in_ours() -> None:
    op = operations.SubmitSM(
        seqNum=99,
        source_addr_ton=pdu_types.AddrTon.INTERNATIONAL,
        source_addr_npi=pdu_types.AddrNpi.ISDN,
        source_addr="6512345678",
        dest_addr_ton=pdu_types.AddrTon.INTERNATIONAL,
        dest_addr_npi=pdu_types.AddrNpi.ISDN,
        destination_addr="8613812345678",
        esm_class=pdu_types.EsmClass(
            pdu_types.EsmClassMode.STORE_AND_FORWARD,
            pdu_types.EsmClassType.DEFAULT,
            [pdu_types.EsmClassGsmFeatures.UDHI_INDICATOR_SET],
        ),
        registered_delivery=pdu_types.RegisteredDelivery(
            pdu_types.RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED
        ),
        data_coding=pdu_types.DataCoding(schemeData=pdu_types.DataCodingDefault.LATIN_1),
        short_message=b"\x05\x00\x03\x01\x02\x01caf\xe9",
        sar_msg_ref_num=258,
        sar_total_segments=2,
        sar_segment_seqnum=1,
    )
    ours = decode(ENCODER.encode(op))
    assert isinstance(ours, SubmitSm)
    assert ours.sequence_number == 99
    assert (ours.source_addr_ton, ours.source_addr_npi, ours.source_addr) == (1, 1, "6512345678")
    assert ours.destination_addr == "8613812345678"
    assert ours.esm_class == 0x43  # store-and-forward + UDHI
    assert ours.registered_delivery == 1
    assert ours.data_coding == 3
    assert ours.short_message == b"\x05\x00\x03\x01\x02\x01caf\xe9"
    assert ours.sar == (258, 2, 1)


def test_pdu3_deliver_sm_receipt_decodes_in_ours() -> None:
    op = operations.DeliverSM(
        seqNum=3,
        source_addr="123",
        destination_addr="456",
        short_message=b"id:abc stat:UNDELIV err:011",
        esm_class=pdu_types.EsmClass(
            pdu_types.EsmClassMode.DEFAULT, pdu_types.EsmClassType.SMSC_DELIVERY_RECEIPT
        ),
        receipted_message_id="abc",
        message_state=pdu_types.MessageState.UNDELIVERABLE,
    )
    ours = decode(ENCODER.encode(op))
    assert isinstance(ours, DeliverSm)
    assert ours.esm_class == 0x04
    assert ours.receipted_message_id == "abc"
    assert ours.message_state == 5
    assert ours.short_message == b"id:abc stat:UNDELIV err:011"


def test_pdu3_bind_and_responses_decode_in_ours() -> None:
    bind = operations.BindTransceiver(
        seqNum=1,
        system_id="sys",
        password="pw",
        system_type="",
        interface_version=0x34,
        addr_ton=pdu_types.AddrTon.INTERNATIONAL,
        addr_npi=pdu_types.AddrNpi.ISDN,
        address_range="",
    )
    assert decode(ENCODER.encode(bind)) == BindTransceiver(
        sequence_number=1, system_id="sys", password="pw", addr_ton=1, addr_npi=1
    )
    resp = operations.SubmitSMResp(seqNum=2, message_id="xyz")
    assert decode(ENCODER.encode(resp)) == SubmitSmResp(sequence_number=2, message_id="xyz")
    assert decode(ENCODER.encode(operations.EnquireLink(seqNum=8))) == EnquireLink(
        sequence_number=8
    )
    err = operations.SubmitSMResp(seqNum=4, status=pdu_types.CommandStatus.ESME_RTHROTTLED)
    decoded = decode(ENCODER.encode(err))
    assert decoded == SubmitSmResp(sequence_number=4, command_status=0x58)
