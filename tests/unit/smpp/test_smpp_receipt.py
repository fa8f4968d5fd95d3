"""Delivery receipt parsing (text and TLV forms) and message id normalisation."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsms.domain.codes import SmsState
from cloudsms.domain.dlr import STAT_TO_SMS_STATE, sms_state_of
from cloudsms.smpp import (
    DataSm,
    DeliverSm,
    SmppMessageState,
    SubmitSm,
    Tag,
    Tlv,
    normalise_message_id,
    parse_receipt_text,
    receipt_from_pdu,
)
from cloudsms.smpp.receipt import (
    _STANDARD,
    _parse_fields,
    _scan_fields,
    normalise_stat,
    parse_receipt_date,
)

STANDARD = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 "
    "stat:DELIVRD err:000 text:Hello world"
)


def test_standard_appendix_b_text() -> None:
    r = parse_receipt_text(STANDARD)
    assert r is not None
    assert r.message_id == "0123456789"
    assert (r.submitted, r.delivered) == (1, 1)
    assert r.submit_date == datetime(2025, 1, 2, 15, 4)
    assert r.done_date == datetime(2025, 1, 2, 15, 5)
    assert r.state == "DELIVRD" and sms_state_of(r.state) == SmsState.DELIVERED
    assert r.error_code == "000"
    assert r.text == "Hello world"
    assert r.is_final


@pytest.mark.parametrize(
    ("text", "message_id", "state", "done"),
    [
        (STANDARD.lower(), "0123456789", "DELIVRD", datetime(2025, 1, 2, 15, 5)),
        (  # no text: field, seconds in dates, underscores
            "id:ABCDEF12 sub:1 dlvrd:0 submit_date:250102150401 done_date:250102150559 "
            "stat:UNDELIV err:011",
            "ABCDEF12",
            "UNDELIV",
            datetime(2025, 1, 2, 15, 5, 59),
        ),
        (  # different order, extra fields, spelled-out state
            "stat:DELIVERED id:42 foo:bar err:0 done date:2501021505 text:x",
            "42",
            "DELIVRD",
            datetime(2025, 1, 2, 15, 5),
        ),
        ("id:77 stat:EXPIRED\0", "77", "EXPIRED", None),  # trailing NUL, no dates
        ("id:77 stat:gibberish done date:2513991505", "77", "UNKNOWN", None),  # bad date
        ("ID: 99  STAT: REJECTD", "99", "REJECTD", None),  # spaces after colons
        ("id:abc-def_123 submitdate:2501021504 stat:ACCEPTD", "abc-def_123", "ACCEPTD", None),
    ],
)
def test_real_world_variants(text: str, message_id: str, state: str, done: datetime | None) -> None:
    r = parse_receipt_text(text)
    assert r is not None
    assert (r.message_id, r.state, r.done_date) == (message_id, state, done)


def test_extra_fields_are_kept_and_text_may_contain_colons() -> None:
    r = parse_receipt_text("id:1 stat:DELIVRD network:23415 text:code: 1234 id:2")
    assert r is not None
    assert r.extra == (("network", "23415"),)
    assert r.text == "code: 1234 id:2"
    assert r.message_id == "1"


_printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=4)
_date = st.sampled_from(["2501021504", "250102150459", "2513991505", "0000000000"])


@given(
    message_id=_printable,
    sub=_digits,
    dlvrd=_digits,
    dates=st.tuples(_date, _date),
    stat=st.sampled_from(["DELIVRD", "undeliv", "Delivered", "EN_ROUTE", "x"]),
    err=_printable | st.just(""),
    text=st.text(max_size=30),
)
def test_standard_layout_fast_path_agrees_with_the_general_parser(
    message_id: str,
    sub: str,
    dlvrd: str,
    dates: tuple[str, str],
    stat: str,
    err: str,
    text: str,
) -> None:
    body = (
        f"id:{message_id} sub:{sub} dlvrd:{dlvrd} submit date:{dates[0]} done date:{dates[1]} "
        f"stat:{stat} err:{err} text:{text}"
    )
    clean = body.replace("\0", " ")
    assert _STANDARD.fullmatch(clean) is not None
    assert _parse_fields(body) == _scan_fields(clean)


def test_not_a_receipt() -> None:
    assert parse_receipt_text("Hello, this is an MO message") is None
    assert parse_receipt_text("stat:DELIVRD err:000") is None


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ("delivrd", "DELIVRD"),
        ("Delivered", "DELIVRD"),
        ("UNDELIVERABLE", "UNDELIV"),
        ("accepted", "ACCEPTD"),
        ("rejected", "REJECTD"),
        ("enroute", "ENROUTE"),
        ("deleted", "DELETED"),
        ("???", "UNKNOWN"),
    ],
)
def test_normalise_stat(raw: str, word: str) -> None:
    assert normalise_stat(raw) == word


def test_stat_to_sms_state_table() -> None:
    assert {k: int(v) for k, v in STAT_TO_SMS_STATE.items()} == {
        "ENROUTE": 1,
        "DELIVRD": 2,
        "EXPIRED": 3,
        "DELETED": 4,
        "UNDELIV": 5,
        "ACCEPTD": 6,
        "UNKNOWN": 7,
        "REJECTD": 8,
    }


def test_receipt_dates() -> None:
    assert parse_receipt_date("2512312359") == datetime(2025, 12, 31, 23, 59)
    assert parse_receipt_date("251231235958") == datetime(2025, 12, 31, 23, 59, 58)
    assert parse_receipt_date("25123123") is None
    assert parse_receipt_date("2502301200") is None  # 30 February


def test_receipt_from_deliver_sm_text_only() -> None:
    pdu = DeliverSm(sequence_number=1, esm_class=0x04, short_message=STANDARD.encode())
    r = receipt_from_pdu(pdu)
    assert r is not None
    assert (r.message_id, r.state, r.error_code) == ("0123456789", "DELIVRD", "000")


def test_receipt_from_pdu_prefers_tlvs() -> None:
    pdu = DeliverSm(
        sequence_number=1,
        esm_class=0x04,
        short_message=b"id:0123 sub:001 dlvrd:000 submit date:2501021504 done date:2501021505 "
        b"stat:DELIVRD err:000 text:",
        tlvs=(
            Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "7B"),
            Tlv.uint8(Tag.MESSAGE_STATE, SmppMessageState.UNDELIVERABLE),
            Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
        ),
    )
    r = receipt_from_pdu(pdu)
    assert r is not None
    assert r.message_id == "7B"
    assert r.state == "UNDELIV" and sms_state_of(r.state) == SmsState.UNDELIVERABLE
    assert r.error_code == "011" and r.network_error_code == (3, 11)
    assert r.done_date == datetime(2025, 1, 2, 15, 5)  # still taken from the text


def test_receipt_from_tlvs_only_data_sm() -> None:
    pdu = DataSm(
        sequence_number=1,
        esm_class=0x04,
        tlvs=(Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "abc"), Tlv.uint8(Tag.MESSAGE_STATE, 2)),
    )
    r = receipt_from_pdu(pdu)
    assert r is not None
    assert (r.message_id, r.state, r.text) == ("abc", "DELIVRD", "")


def test_receipt_missing_nul_on_tlv_and_payload_text() -> None:
    pdu = DeliverSm(
        sequence_number=1,
        tlvs=(
            Tlv(Tag.RECEIPTED_MESSAGE_ID, b"abc"),  # no NUL
            Tlv(Tag.MESSAGE_PAYLOAD, b"id:abc stat:EXPIRED err:000"),
        ),
    )
    r = receipt_from_pdu(pdu)
    assert r is not None
    assert (r.message_id, r.state) == ("abc", "EXPIRED")


def test_receipt_without_esm_class_bits_but_receipt_text() -> None:
    pdu = DeliverSm(sequence_number=1, short_message=b"id:5 stat:DELIVRD")
    r = receipt_from_pdu(pdu)
    assert r is not None and r.message_id == "5"


def test_mo_message_and_other_pdus_are_not_receipts() -> None:
    assert receipt_from_pdu(DeliverSm(sequence_number=1, short_message=b"hello")) is None
    assert receipt_from_pdu(SubmitSm(sequence_number=1, short_message=b"id:1 stat:X")) is None
    assert receipt_from_pdu(DeliverSm(sequence_number=1, esm_class=0x04)) is None


# --- message id normalisation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "submit_id", "receipt_id"),
    [
        ("as_is", "abc123", " abc123\0"),
        ("ignore_case", "ABCdef", "abcDEF"),
        ("hex", "00AB12", "ab12"),
        ("hex", "0xab12", "AB12"),
        ("decimal", "000123", "123"),
        ("hex_to_decimal", "0A1B2C", "662316"),
        ("hex_to_decimal", "0a1b2c", "0662316"),
        ("decimal_to_hex", "662316", "A1B2C"),
        ("hex", "FFFFFFFFFFFFFFFFFFFF", "ffffffffffffffffffff"),  # bigger than 64 bits
    ],
)
def test_ids_in_both_forms_match(mode: str, submit_id: str, receipt_id: str) -> None:
    a = normalise_message_id(submit_id, mode, source="submit")  # type: ignore[arg-type]
    b = normalise_message_id(receipt_id, mode, source="receipt")  # type: ignore[arg-type]
    assert a == b


@pytest.mark.parametrize(
    ("mode", "submit_id", "receipt_id"),
    [
        ("as_is", "ABC", "abc"),
        ("hex", "AB12", "AB13"),
        ("decimal", "123", "1230"),
        ("hex_to_decimal", "10", "10"),  # 0x10 = 16
        ("decimal", "12x", "12"),  # not a number: never a wrong match
        ("decimal", "1_000", "1000"),  # int() would accept underscores; we must not
    ],
)
def test_different_ids_do_not_match(mode: str, submit_id: str, receipt_id: str) -> None:
    a = normalise_message_id(submit_id, mode, source="submit")  # type: ignore[arg-type]
    b = normalise_message_id(receipt_id, mode, source="receipt")  # type: ignore[arg-type]
    assert a != b


def test_non_numeric_id_in_numeric_mode_is_marked() -> None:
    assert normalise_message_id("xyz", "decimal") == "raw:xyz"
    with pytest.raises(ValueError):
        normalise_message_id("1", "octal")  # type: ignore[arg-type]
