"""Codec: round trips, chunking, hostile input and the decoder's error/skip contract."""

from __future__ import annotations

import struct

import pytest
from smpp_samples import SAMPLES, SUBMIT

from cloudsms.smpp import (
    DEFAULT_MAX_COMMAND_LENGTH,
    NEED_DATA,
    PDU_CLASSES,
    BindTransmitter,
    CommandId,
    CommandStatus,
    Decoder,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    LocalProtocolError,
    Outbind,
    Pdu,
    RemoteProtocolError,
    SequenceCounter,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Tlv,
    decode,
    encode,
    error_response,
)

S = CommandStatus


def header(length: int, command_id: int, status: int = 0, seq: int = 1) -> bytes:
    return struct.pack(">IIII", length, command_id, status, seq)


def pdu_bytes(command_id: int, body: bytes, seq: int = 1, status: int = 0) -> bytes:
    return header(16 + len(body), command_id, status, seq) + body


def drain(decoder: Decoder) -> list[Pdu]:
    out: list[Pdu] = []
    while (pdu := decoder.next_pdu()) is not NEED_DATA:
        out.append(pdu)
    return out


def test_samples_cover_every_pdu_class() -> None:
    assert {type(p) for p in SAMPLES} == set(PDU_CLASSES.values())


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip_whole(pdu: Pdu) -> None:
    data = encode(pdu)
    assert struct.unpack_from(">I", data)[0] == len(data)
    assert struct.unpack_from(">I", data, 4)[0] == pdu.command_id
    assert decode(data) == pdu


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip_byte_at_a_time(pdu: Pdu) -> None:
    data = encode(pdu)
    decoder = Decoder()
    got: list[Pdu] = []
    for i in range(len(data)):
        decoder.receive_data(data[i : i + 1])
        got += drain(decoder)
        if i < len(data) - 1:
            assert got == []
    assert got == [pdu]
    assert decoder.buffered == 0


def test_all_samples_coalesced_in_one_chunk_and_in_odd_chunks() -> None:
    stream = b"".join(encode(p) for p in SAMPLES)
    decoder = Decoder()
    decoder.receive_data(stream)
    assert drain(decoder) == SAMPLES
    for size in (3, 17, 100, 1000):
        decoder = Decoder()
        got: list[Pdu] = []
        for i in range(0, len(stream), size):
            decoder.receive_data(stream[i : i + size])
            got += drain(decoder)
        assert got == SAMPLES


def test_known_wire_bytes() -> None:
    assert encode(EnquireLink(sequence_number=1)) == bytes.fromhex(
        "00000010000000150000000000000001"
    )
    sm = SubmitSm(sequence_number=2, source_addr="1", destination_addr="2", short_message=b"A")
    expected = (
        header(0, 4, 0, 2)
        + b"\0"  # service_type
        + b"\0\0"
        + b"1\0"  # source ton npi addr
        + b"\0\0"
        + b"2\0"  # dest
        + b"\0\0\0"  # esm_class protocol_id priority_flag
        + b"\0\0"  # schedule_delivery_time validity_period
        + b"\0\0\0\0"  # registered_delivery replace_if_present data_coding sm_default_msg_id
        + b"\x01A"
    )
    expected = struct.pack(">I", len(expected)) + expected[4:]
    assert encode(sm) == expected


def test_tlvs_round_trip_with_accessors() -> None:
    pdu = SubmitSm(
        sequence_number=3,
        tlvs=(
            Tlv.uint16(Tag.SAR_MSG_REF_NUM, 513),
            Tlv.uint8(Tag.SAR_TOTAL_SEGMENTS, 3),
            Tlv.uint8(Tag.SAR_SEGMENT_SEQNUM, 2),
            Tlv(Tag.MESSAGE_PAYLOAD, b"p" * 3000),
            Tlv(Tag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
        ),
    )
    back = decode(encode(pdu))
    assert back.sar == (513, 3, 2)
    assert back.message_payload == b"p" * 3000
    assert isinstance(back, SubmitSm)
    assert back.payload == b"p" * 3000
    assert back.network_error_code == (3, 11)
    assert back.tlv(0x9999) is None


# --- hostile and malformed input ----------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 15])
def test_command_length_below_16_is_fatal(length: int) -> None:
    decoder = Decoder()
    decoder.receive_data(header(length, 4, 0, 99))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert info.value.command_status == S.ESME_RINVCMDLEN
    assert info.value.sequence_number == 99
    assert info.value.fatal
    # Poisoned: the same error again, and further input is discarded.
    decoder.receive_data(encode(EnquireLink(sequence_number=1)))
    assert decoder.buffered == 0
    with pytest.raises(RemoteProtocolError) as again:
        decoder.next_pdu()
    assert again.value is info.value


def test_command_length_over_cap_raises_before_buffering_the_body() -> None:
    decoder = Decoder(max_command_length=4096)
    decoder.receive_data(header(0x7FFFFFFF, 4, 0, 5))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert (info.value.command_status, info.value.sequence_number) == (S.ESME_RINVCMDLEN, 5)
    assert info.value.fatal
    flood = b"\xff" * 65536
    for _ in range(32):  # 2 MiB
        decoder.receive_data(flood)
        assert decoder.buffered == 0
        with pytest.raises(RemoteProtocolError):
            decoder.next_pdu()


def test_flood_arriving_in_one_chunk_is_dropped_on_error() -> None:
    decoder = Decoder()
    decoder.receive_data(header(DEFAULT_MAX_COMMAND_LENGTH + 1, 4) + b"\0" * 2_000_000)
    with pytest.raises(RemoteProtocolError):
        decoder.next_pdu()
    assert decoder.buffered == 0


def test_length_at_the_cap_is_accepted() -> None:
    pdu = SubmitSm(sequence_number=1, tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, b"x" * 65535),))
    data = encode(pdu)
    assert len(data) <= DEFAULT_MAX_COMMAND_LENGTH
    assert decode(data) == pdu
    decoder = Decoder(max_command_length=len(data) - 1)
    decoder.receive_data(data)
    with pytest.raises(RemoteProtocolError):
        decoder.next_pdu()


def test_unknown_command_id_is_skipped_with_its_sequence_number() -> None:
    decoder = Decoder()
    decoder.receive_data(pdu_bytes(0x00000099, b"junk body", seq=77))
    decoder.receive_data(encode(EnquireLink(sequence_number=78)))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    exc = info.value
    assert (exc.command_status, exc.sequence_number, exc.command_id) == (S.ESME_RINVCMDID, 77, 0x99)
    assert not exc.fatal
    assert decoder.next_pdu() == EnquireLink(sequence_number=78)
    answer = error_response(exc)
    assert answer == GenericNack(sequence_number=77, command_status=S.ESME_RINVCMDID)


def test_request_body_shorter_than_mandatory_fields() -> None:
    body = encode(SUBMIT)[16:30]  # cut inside the fields
    decoder = Decoder()
    decoder.receive_data(pdu_bytes(CommandId.SUBMIT_SM, body, seq=12))
    decoder.receive_data(encode(EnquireLink(sequence_number=13)))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert (info.value.command_status, info.value.sequence_number) == (S.ESME_RINVCMDLEN, 12)
    assert error_response(info.value) == SubmitSmResp(
        sequence_number=12, command_status=S.ESME_RINVCMDLEN
    )
    assert decoder.next_pdu() == EnquireLink(sequence_number=13)


def test_header_only_request_with_empty_body_is_rejected_for_submit() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(pdu_bytes(CommandId.SUBMIT_SM, b"", seq=4))
    assert info.value.command_status == S.ESME_RINVCMDLEN


def test_truncated_stream_waits_for_more() -> None:
    data = encode(SUBMIT)
    decoder = Decoder()
    decoder.receive_data(data[:-1])
    assert decoder.next_pdu() is NEED_DATA
    decoder.receive_data(data[-1:])
    assert decoder.next_pdu() == SUBMIT


@pytest.mark.parametrize(
    "command_id", [CommandId.SUBMIT_SM_RESP, CommandId.DATA_SM_RESP, CommandId.BIND_RECEIVER_RESP]
)
def test_error_response_with_empty_body_is_accepted(command_id: int) -> None:
    pdu = decode(pdu_bytes(command_id, b"", seq=5, status=S.ESME_RTHROTTLED))
    assert pdu.command_status == S.ESME_RTHROTTLED
    assert pdu.sequence_number == 5
    assert pdu == PDU_CLASSES[command_id](sequence_number=5, command_status=S.ESME_RTHROTTLED)


def test_deliver_sm_resp_without_body_is_accepted() -> None:
    assert decode(pdu_bytes(CommandId.DELIVER_SM_RESP, b"", seq=3)) == DeliverSmResp(
        sequence_number=3
    )


def test_missing_final_nul_on_last_string_is_accepted() -> None:
    pdu = decode(pdu_bytes(CommandId.SUBMIT_SM_RESP, b"abc123", seq=6))
    assert pdu == SubmitSmResp(sequence_number=6, message_id="abc123")
    outbind = decode(pdu_bytes(CommandId.OUTBIND, b"SMSC\0pw", seq=1))
    assert outbind == Outbind(sequence_number=1, system_id="SMSC", password="pw")


def test_missing_nul_in_the_middle_is_an_error() -> None:
    # bind_transmitter whose system_id never ends
    with pytest.raises(RemoteProtocolError) as info:
        decode(pdu_bytes(CommandId.BIND_TRANSMITTER, b"abcdefgh", seq=8))
    assert (info.value.command_status, info.value.sequence_number) == (S.ESME_RINVCMDLEN, 8)


def test_field_over_its_limit_gets_the_field_status() -> None:
    good = encode(SubmitSm(sequence_number=9, source_addr="1" * 20))
    bad = good.replace(b"1" * 20 + b"\0", b"1" * 21 + b"\0")
    bad = struct.pack(">I", len(bad)) + bad[4:]
    with pytest.raises(RemoteProtocolError) as info:
        decode(bad)
    assert (info.value.command_status, info.value.sequence_number) == (S.ESME_RINVSRCADR, 9)
    assert error_response(info.value) == SubmitSmResp(
        sequence_number=9, command_status=S.ESME_RINVSRCADR
    )
    long_sysid = pdu_bytes(CommandId.BIND_TRANSMITTER, b"s" * 16 + b"\0pw\0\0\x34\0\0\0")
    with pytest.raises(RemoteProtocolError) as info:
        decode(long_sysid)
    assert info.value.command_status == S.ESME_RINVSYSID


def test_sm_length_running_past_the_pdu() -> None:
    data = bytearray(encode(SubmitSm(sequence_number=3, short_message=b"abc")))
    data[-4] = 200  # sm_length
    with pytest.raises(RemoteProtocolError) as info:
        decode(bytes(data))
    assert (info.value.command_status, info.value.sequence_number) == (S.ESME_RINVMSGLEN, 3)


def test_sm_length_255_is_invalid() -> None:
    base = encode(SubmitSm(sequence_number=3))[16:-1]
    with pytest.raises(RemoteProtocolError) as info:
        decode(pdu_bytes(CommandId.SUBMIT_SM, base + b"\xff" + b"x" * 255, seq=3))
    assert info.value.command_status == S.ESME_RINVMSGLEN


def test_tlv_length_overrun_is_invalid_tlv_stream() -> None:
    body = encode(SubmitSmResp(sequence_number=1, message_id="id"))[16:]
    data = pdu_bytes(CommandId.SUBMIT_SM_RESP, body + struct.pack(">HH", 0x1E, 50) + b"abc", seq=4)
    decoder = Decoder()
    decoder.receive_data(data + encode(EnquireLinkResp(sequence_number=5)))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert info.value.command_status == S.ESME_RINVOPTPARSTREAM
    assert S.__members__["ESME_RINVTLVSTREAM"] is S.ESME_RINVOPTPARSTREAM  # 5.0 name: an alias
    assert info.value.sequence_number == 4
    assert error_response(info.value) is None  # a response is never answered
    assert decoder.next_pdu() == EnquireLinkResp(sequence_number=5)


def test_short_trailing_garbage_is_ignored_and_counted() -> None:
    body = encode(SubmitSmResp(sequence_number=1, message_id="id"))[16:]
    decoder = Decoder()
    decoder.receive_data(pdu_bytes(CommandId.SUBMIT_SM_RESP, body + b"\0\0", seq=2))
    assert decoder.next_pdu() == SubmitSmResp(sequence_number=2, message_id="id")
    assert decoder.ignored_octets == 2


def test_invalid_dest_flag_in_submit_multi() -> None:
    body = b"\0" + b"\0\0src\0" + b"\x01" + b"\x07abc\0"
    with pytest.raises(RemoteProtocolError) as info:
        decode(pdu_bytes(CommandId.SUBMIT_MULTI, body, seq=21))
    exc = info.value
    assert (exc.command_status, exc.sequence_number) == (S.ESME_RINVDESTFLAG, 21)
    assert exc.command_id == CommandId.SUBMIT_MULTI


def test_fatal_error_answer_is_generic_nack() -> None:
    decoder = Decoder()
    decoder.receive_data(header(3, CommandId.SUBMIT_SM, 0, 31))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_pdu()
    assert error_response(info.value) == GenericNack(
        sequence_number=31, command_status=S.ESME_RINVCMDLEN
    )


def test_buffer_compacts_during_long_streams() -> None:
    one = encode(SUBMIT)
    decoder = Decoder()
    for _ in range(2000):
        decoder.receive_data(one + one[:10])
        decoder.next_pdu()
        decoder.receive_data(one[10:])
        decoder.next_pdu()
        assert len(decoder._buf) < 4 * 4096 + 4 * len(one)


def test_decode_rejects_extra_bytes() -> None:
    with pytest.raises(RemoteProtocolError):
        decode(encode(EnquireLink(sequence_number=1)) * 2)
    with pytest.raises(RemoteProtocolError):
        decode(encode(EnquireLink(sequence_number=1))[:10])


# --- local validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"system_id": "x" * 16}, S.ESME_RINVSYSID),
        ({"password": "x" * 9}, S.ESME_RINVPASWD),
        ({"system_type": "x" * 13}, S.ESME_RINVSYSTYP),
        ({"addr_ton": 256}, S.ESME_RSYSERR),
        ({"system_id": "a\0b"}, S.ESME_RINVSYSID),
        ({"system_id": b"bytes"}, S.ESME_RINVSYSID),
    ],
)
def test_bind_constructor_limits(kwargs: dict[str, object], status: CommandStatus) -> None:
    with pytest.raises(LocalProtocolError) as info:
        BindTransmitter(sequence_number=1, **kwargs)  # type: ignore[arg-type]
    assert info.value.command_status == status


def test_bind_limits_accept_the_maximum() -> None:
    pdu = BindTransmitter(sequence_number=1, system_id="x" * 15, password="y" * 8)
    assert decode(encode(pdu)) == pdu


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"source_addr": "1" * 21}, S.ESME_RINVSRCADR),
        ({"destination_addr": "1" * 21}, S.ESME_RINVDSTADR),
        ({"short_message": b"x" * 255}, S.ESME_RINVMSGLEN),
        ({"short_message": "text"}, S.ESME_RINVMSGLEN),
        ({"service_type": "ABCDEF"}, S.ESME_RINVSERTYP),
        ({"esm_class": -1}, S.ESME_RINVESMCLASS),
        ({"sequence_number": 2**32}, S.ESME_RSYSERR),
        ({"tlvs": [Tlv(1, b"")]}, S.ESME_RINVOPTPARSTREAM),
    ],
)
def test_submit_sm_constructor_limits(kwargs: dict[str, object], status: CommandStatus) -> None:
    args: dict[str, object] = {"sequence_number": 1, **kwargs}
    with pytest.raises(LocalProtocolError) as info:
        SubmitSm(**args)  # type: ignore[arg-type]
    assert info.value.command_status == status


def test_message_id_limit() -> None:
    assert SubmitSmResp(sequence_number=1, message_id="x" * 64).message_id == "x" * 64
    with pytest.raises(LocalProtocolError) as info:
        SubmitSmResp(sequence_number=1, message_id="x" * 65)
    assert info.value.command_status == S.ESME_RINVMSGID


def test_tlv_limits() -> None:
    with pytest.raises(LocalProtocolError):
        Tlv(0x10000, b"")
    with pytest.raises(LocalProtocolError):
        Tlv(1, b"x" * 65536)
    with pytest.raises(LocalProtocolError):
        Tlv.uint8(1, 256)
    assert Tlv.cstring(Tag.RECEIPTED_MESSAGE_ID, "ab").value == b"ab\0"
    assert Tlv(1, b"ab").as_str() == "ab"


def test_non_latin1_text_cannot_be_encoded() -> None:
    pdu = SubmitSm(sequence_number=1, source_addr="云短信")
    with pytest.raises(LocalProtocolError):
        encode(pdu)


def test_latin1_strings_round_trip() -> None:
    pdu = SubmitSm(sequence_number=1, source_addr="Café")
    assert decode(encode(pdu)) == pdu


def test_response_helper() -> None:
    resp = SUBMIT.response(message_id="abc")
    assert resp == SubmitSmResp(sequence_number=SUBMIT.sequence_number, message_id="abc")
    with pytest.raises(LocalProtocolError):
        resp.response()
    assert SUBMIT.is_response is False and resp.is_response is True


def test_error_response_for_request_without_response_type() -> None:
    exc = RemoteProtocolError(
        "x", command_status=S.ESME_RSYSERR, sequence_number=4, command_id=CommandId.OUTBIND
    )
    assert error_response(exc) == GenericNack(sequence_number=4, command_status=S.ESME_RSYSERR)


# --- sequence numbers --------------------------------------------------------------------


def test_sequence_counter_wraps_to_1() -> None:
    counter = SequenceCounter(start=0x7FFFFFFE)
    assert [counter.next() for _ in range(3)] == [0x7FFFFFFE, 0x7FFFFFFF, 1]
    assert counter() == 2
    assert counter.peek() == 3
    with pytest.raises(ValueError):
        SequenceCounter(start=0)
    with pytest.raises(ValueError):
        SequenceCounter(start=0x80000000)
