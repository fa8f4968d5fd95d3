"""Reading carriers' deliver_sm as inbound messages: receipt or MO, parts, decoding, SMS_PUSH_MO."""

from __future__ import annotations

import orjson
import pytest

from cloudsms.domain.inbound import (
    BadInbound,
    DueMo,
    assemble,
    build_mo_push,
    dedup_key,
    first_word,
    is_mobile_originated,
    number_key,
    read_inbound,
)
from cloudsms.smpp.constants import Tag
from cloudsms.smpp.encoding import encode_text
from cloudsms.smpp.pdu import DeliverSm, Tlv


def deliver(short_message: bytes, *, esm_class: int = 0, coding: int = 0, tlvs: tuple[Tlv, ...] = ()
            ) -> DeliverSm:  # fmt: skip
    return DeliverSm(sequence_number=1, source_addr="85261234567", destination_addr="1234",
                     esm_class=esm_class, data_coding=coding, short_message=short_message,
                     tlvs=tlvs)  # fmt: skip


def test_receipts_are_not_inbound_messages() -> None:
    receipt = b"id:1 sub:001 dlvrd:001 submit date:2501010000 done date:2501010000 stat:DELIVRD"
    assert not is_mobile_originated(deliver(receipt, esm_class=0x04))
    assert not is_mobile_originated(deliver(receipt))  # esm_class forgotten: the text says it
    assert not is_mobile_originated(deliver(b"", esm_class=0x08))  # an acknowledgement
    assert not is_mobile_originated(deliver(b"x", tlvs=(Tlv(Tag.RECEIPTED_MESSAGE_ID, b"9\0"),)))
    assert is_mobile_originated(deliver(b"STOP"))
    assert is_mobile_originated(deliver(b"id like to know more"))  # "id " is not "id:"


def test_gsm_text_is_decoded_with_its_escapes() -> None:
    part = read_inbound(deliver(encode_text("Price: 5€ [ok]", "gsm7")))
    assert part.concat is None
    assert assemble([(1, part.data)], part.data_coding) == "Price: 5€ [ok]"
    assert assemble([(1, "café".encode("latin-1"))], 3) == "café"


def test_udh_8_and_16_bit_and_sar_parts() -> None:
    eight = read_inbound(deliver(bytes.fromhex("0500032a0201") + b"ab", esm_class=0x40))
    assert (eight.concat, eight.concat_kind, eight.data) == ((42, 2, 1), "udh8", b"ab")
    sixteen = read_inbound(deliver(bytes.fromhex("060804012c0302") + b"cd", esm_class=0x40))
    assert (sixteen.concat, sixteen.concat_kind) == ((300, 3, 2), "udh16")
    sar = read_inbound(deliver(b"ef", tlvs=(
        Tlv(Tag.SAR_MSG_REF_NUM, (7).to_bytes(2, "big")), Tlv(Tag.SAR_TOTAL_SEGMENTS, b"\x02"),
        Tlv(Tag.SAR_SEGMENT_SEQNUM, b"\x02"))))  # fmt: skip
    assert (sar.concat, sar.concat_kind, sar.data) == ((7, 2, 2), "sar", b"ef")
    single = read_inbound(deliver(bytes.fromhex("0500032a0101") + b"gh", esm_class=0x40))
    assert single.concat is None  # "part 1 of 1" is a whole message
    with pytest.raises(BadInbound):
        read_inbound(deliver(bytes.fromhex("0500032a0203") + b"x", esm_class=0x40))


def test_ucs2_parts_are_decoded_joined() -> None:
    data = "😀 hi".encode("utf-16-be")  # a surrogate pair split across the parts
    assert assemble([(2, data[2:]), (1, data[:2])], 8) == "😀 hi"


def test_keys_and_keywords() -> None:
    assert number_key("+852 3000-1234") == "85230001234"
    assert number_key("0085230001234") == "85230001234"
    assert number_key("Acme") == "ACME"
    assert first_word("  stop please") == "STOP" and first_word("") == ""
    a = read_inbound(deliver(b"yes"))
    assert dedup_key(1, a, "yes") == dedup_key(1, a, "yes") != dedup_key(2, a, "yes")


def test_sms_push_mo_packet() -> None:
    mo = DueMo(id=1, mo_uid="MO1", customer_id=1, auth_key="k" * 128, serial=7,
               callback_url="http://x/", callback_ca_pem=None, source="85261234567",
               destination="1234", text="你好", parts=1, keyword="你好", received_ms=0,
               created_ms=0, attempts=0, next_attempt_ms=0)  # fmt: skip
    packet = orjson.loads(build_mo_push(mo, push_ms=1000))
    assert packet["METHOD"] == "SMS_PUSH_MO" and packet["SERIAL"] == 7
    assert packet["RECEIVE_TIME"] == "1970-01-01 08:00:00"  # UTC+8
    assert (packet["SOURCE_MSISDN"], packet["DEST_MSISDN"], packet["SMS_CONTENT"]) == (
        "85261234567", "1234", "你好")  # fmt: skip
