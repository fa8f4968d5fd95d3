"""One sample of every PDU class, with non-default values, shared by the SMPP tests."""

from __future__ import annotations

from typing import Any

from cloudsms.smpp import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Tlv,
    Unbind,
    UnbindResp,
    UnsuccessSme,
)

BIND: dict[str, Any] = {
    "system_id": "cloudsms",
    "password": "secret12",
    "system_type": "VMA",
    "addr_ton": 1,
    "addr_npi": 1,
    "address_range": "^65",
}

SUBMIT = SubmitSm(
    sequence_number=7,
    service_type="CMT",
    source_addr_ton=5,
    source_addr="CloudSMS",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="6591234567",
    esm_class=0x40,
    protocol_id=0,
    priority_flag=1,
    schedule_delivery_time="250102150400000+",
    validity_period="000001000000000R",
    registered_delivery=1,
    data_coding=8,
    short_message=b"\x05\x00\x03\x2a\x02\x01\x00h\x00i",
    tlvs=(Tlv.uint16(Tag.USER_MESSAGE_REFERENCE, 42), Tlv(0x1400, b"vendor")),
)

SAMPLES: list[Pdu] = [
    GenericNack(sequence_number=1, command_status=3),
    BindTransmitter(sequence_number=2, **BIND),
    BindReceiver(sequence_number=3, **BIND),
    BindTransceiver(sequence_number=4, **BIND),
    BindTransmitterResp(
        sequence_number=2, system_id="SMSC", tlvs=(Tlv.uint8(Tag.SC_INTERFACE_VERSION, 0x34),)
    ),
    BindReceiverResp(sequence_number=3, system_id="SMSC"),
    BindTransceiverResp(sequence_number=4, command_status=0x0E),
    Outbind(sequence_number=5, system_id="SMSC", password="pw"),
    Unbind(sequence_number=6),
    UnbindResp(sequence_number=6),
    EnquireLink(sequence_number=0x7FFFFFFF),
    EnquireLinkResp(sequence_number=0x7FFFFFFF),
    SUBMIT,
    SubmitSmResp(sequence_number=7, message_id="0A1B2C3D"),
    DeliverSm(
        sequence_number=8,
        source_addr="6591234567",
        destination_addr="12345",
        esm_class=0x04,
        short_message=b"id:0A1B2C3D sub:001 dlvrd:001 submit date:2501021504 "
        b"done date:2501021505 stat:DELIVRD err:000 text:hi",
        tlvs=(Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "0A1B2C3D"), Tlv.uint8(Tag.MESSAGE_STATE, 2)),
    ),
    DeliverSmResp(sequence_number=8),
    DataSm(
        sequence_number=9,
        source_addr="a" * 64,
        destination_addr="6591234567",
        data_coding=3,
        tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"x" * 1000),),
    ),
    DataSmResp(sequence_number=9, message_id="m9"),
    QuerySm(sequence_number=10, message_id="abc", source_addr="CloudSMS"),
    QuerySmResp(
        sequence_number=10, message_id="abc", final_date="250102150500000+", message_state=2
    ),
    CancelSm(sequence_number=11, message_id="abc", source_addr="x", destination_addr="y"),
    CancelSmResp(sequence_number=11),
    ReplaceSm(sequence_number=12, message_id="abc", source_addr="x", short_message=b"new text"),
    ReplaceSmResp(sequence_number=12),
    SubmitMulti(
        sequence_number=13,
        source_addr="CloudSMS",
        dest_addresses=(SmeAddress(1, 1, "6591234567"), DistributionList("friends")),
        short_message=b"hello all",
    ),
    SubmitMultiResp(
        sequence_number=13,
        message_id="mm",
        unsuccess_smes=(UnsuccessSme(1, 1, "6500000000", 0x0B),),
    ),
    AlertNotification(
        sequence_number=14,
        source_addr="6591234567",
        esme_addr="cloudsms",
        tlvs=(Tlv.uint8(Tag.MS_AVAILABILITY_STATUS, 0),),
    ),
]
