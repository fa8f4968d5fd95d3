"""Property tests: generated PDUs round-trip; arbitrary bytes parse or raise RemoteProtocolError."""

from __future__ import annotations

import dataclasses
import itertools
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smpp_samples import SAMPLES

from cloudsms.smpp import (
    NEED_DATA,
    PDU_CLASSES,
    Decoder,
    DistributionList,
    Pdu,
    RemoteProtocolError,
    SmeAddress,
    Tlv,
    UnsuccessSme,
    encode,
)
from cloudsms.smpp.codec import _FAST as FAST
from cloudsms.smpp.codec import _LAYOUTS as LAYOUTS
from cloudsms.smpp.codec import _decode as generic_decode
from cloudsms.smpp.pdu import (
    C_STR,
    DEST_ADDRESSES,
    SHORT_MESSAGE,
    U8,
    WIRE_FIELDS,
    DeliverSm,
    DeliverSmResp,
    SubmitSm,
    SubmitSmResp,
    Wire,
)

latin1 = st.characters(min_codepoint=1, max_codepoint=255)
u8 = st.integers(0, 255)
addr = st.text(latin1, max_size=20)
tlvs = st.lists(st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=4).map(
    tuple
)


def field_strategy(wire: Wire) -> st.SearchStrategy[Any]:
    if wire.kind == C_STR:
        return st.text(latin1, max_size=wire.size - 1)
    if wire.kind == U8:
        return u8
    if wire.kind == SHORT_MESSAGE:
        return st.binary(max_size=254)
    if wire.kind == DEST_ADDRESSES:
        return st.lists(
            st.one_of(
                st.builds(SmeAddress, u8, u8, addr),
                st.builds(DistributionList, addr),
            ),
            max_size=5,
        ).map(tuple)
    return st.lists(
        st.builds(UnsuccessSme, u8, u8, addr, st.integers(0, 0xFFFFFFFF)), max_size=5
    ).map(tuple)


@st.composite
def pdus(draw: st.DrawFn) -> Pdu:
    cls = draw(st.sampled_from(sorted(PDU_CLASSES.values(), key=lambda c: c.__name__)))
    kwargs = {name: draw(field_strategy(wire)) for name, wire in WIRE_FIELDS[cls]}
    return cls(
        sequence_number=draw(st.integers(0, 0xFFFFFFFF)),
        command_status=draw(st.integers(0, 0xFFFFFFFF)),
        tlvs=draw(tlvs),
        **kwargs,
    )


def revalidated(pdu: Pdu) -> Pdu:
    """Run the constructor on a decoded PDU's values: the decoder skipped __init__."""
    values = {f.name: getattr(pdu, f.name) for f in dataclasses.fields(pdu)}
    return type(pdu)(**values)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(pdus(), min_size=1, max_size=5), st.lists(st.integers(0, 10_000), max_size=8))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_pdus_round_trip_in_any_chunking(batch: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in batch)
    decoder = Decoder()
    got: list[Pdu] = []
    for chunk in split(stream, cuts):
        decoder.receive_data(chunk)
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            got.append(pdu)
    # A response whose body is all defaults may come back identical; everything must.
    assert got == batch
    assert [revalidated(p) for p in got] == batch
    assert decoder.buffered == 0


def feed_and_check(chunks: list[bytes]) -> None:
    """Invariant: every step yields a PDU, NEED_DATA or RemoteProtocolError; nothing else."""
    decoder = Decoder(max_command_length=4096)
    for chunk in chunks:
        decoder.receive_data(chunk)
        for _ in range(len(chunk) + 2):  # bounded: each PDU consumes >= 16 octets
            try:
                pdu = decoder.next_pdu()
            except RemoteProtocolError as exc:
                assert exc.command_status != 0
                assert exc.sequence_number is not None
                if exc.fatal:
                    assert decoder.buffered == 0
                    break
                continue
            if pdu is NEED_DATA:
                break
            assert revalidated(pdu) == pdu
            assert isinstance(encode(pdu), bytes)
        else:  # pragma: no cover
            raise AssertionError("decoder did not make progress")
        assert decoder.buffered <= 4096 + len(chunk)


@given(st.binary(max_size=2000))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_whole(data: bytes) -> None:
    feed_and_check([data])


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_one_at_a_time(data: bytes) -> None:
    feed_and_check([data[i : i + 1] for i in range(len(data))])


@st.composite
def plausible_streams(draw: st.DrawFn) -> bytes:
    """Valid headers with known command ids and mutated bodies: reaches deep into the parser."""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        sample = encode(draw(st.sampled_from(SAMPLES)))
        body = bytearray(sample[16:])
        for _ in range(draw(st.integers(0, 4))):
            if body and draw(st.booleans()):
                i = draw(st.integers(0, len(body) - 1))
                body[i] = draw(u8)
            else:
                cut = draw(st.integers(0, len(body)))
                body = body[:cut] + draw(st.binary(max_size=8))
        out += struct.pack(">I", 16 + len(body)) + sample[4:16] + body
    return out


@given(plausible_streams(), st.booleans())
@settings(max_examples=1000, deadline=None)
def test_mutated_pdus_parse_or_raise_remote_error(stream: bytes, bytewise: bool) -> None:
    if bytewise:
        feed_and_check([stream[i : i + 1] for i in range(len(stream))])
    else:
        feed_and_check([stream])


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[int, bytes]:
    """A command_id with a fast decoder, and a sample body of it, possibly mutated."""
    sample = encode(draw(st.sampled_from([p for p in SAMPLES if p.command_id in FAST])))
    body = bytearray(sample[16:])
    for _ in range(draw(st.integers(0, 3))):
        if body and draw(st.booleans()):
            body[draw(st.integers(0, len(body) - 1))] = draw(u8)
        else:
            cut = draw(st.integers(0, len(body)))
            body = body[:cut] + draw(st.binary(max_size=8))
    return struct.unpack_from(">I", sample, 4)[0], bytes(body)


@given(mutated_bodies(), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
@settings(max_examples=1000, deadline=None)
def test_a_fast_decoder_agrees_with_the_generic_one(
    case: tuple[int, bytes], status: int, seq: int
) -> None:
    # The generated fast path (smpp/compiled.py) may only decline a body, never read it
    # differently: whenever it gives a PDU, the generic decoder gives the same and ignores
    # nothing.
    command_id, body = case
    try:
        fast = FAST[command_id](status, seq, body)
    except Exception:
        return
    layout = LAYOUTS[command_id]
    assert generic_decode(layout, status, seq, body) == (fast, 0)
    assert revalidated(fast) == fast


def test_every_well_formed_sample_takes_the_fast_path() -> None:
    fast_samples = [p for p in SAMPLES if p.command_id in FAST]
    assert {type(p) for p in fast_samples} >= {SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp}
    for pdu in fast_samples:
        data = encode(pdu)
        status, seq = struct.unpack_from(">II", data, 8)
        assert FAST[pdu.command_id](status, seq, data[16:]) == pdu
