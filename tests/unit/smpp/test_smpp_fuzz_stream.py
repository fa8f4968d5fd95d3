"""SMPP fuzz, bounded: random and mutated PDU streams through the Decoder and an SMSC connection.

Two invariants (HOUSE_STYLE habit 1 and 10):

* the :class:`~cloudsms.smpp.codec.Decoder`, fed any bytes whole, one byte at a time or in
  random cuts, returns a PDU or NEED_DATA or raises ``RemoteProtocolError`` — never another
  exception — makes progress (each PDU consumes at least 16 octets), buffers at most
  ``max_command_length`` + one chunk, and after a fatal error holds nothing;
* the simulator's SMSC connection (the server side a hostile ESME talks to) takes the same
  streams through ``data_received`` without an exception escaping to the event loop, answers
  or closes, and its server keeps working.

The generators are seeded ``random.Random`` functions (not Hypothesis) so that
``bench/fuzz_smpp.py`` can run millions of cases with the same code and report them by seed;
the Hypothesis properties are in ``test_smpp_codec_properties.py``. Here the network is a fake
transport (unit tests do not open sockets); the bench drives a live simulator socket too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import struct
from collections.abc import Callable, Iterator
from typing import Any

from smpp_samples import SAMPLES

from cloudsms.simulator.server import SmscSimulator
from cloudsms.smpp import NEED_DATA, Decoder, RemoteProtocolError, encode
from cloudsms.smpp.constants import HEADER_LENGTH
from cloudsms.smpp.pdu import PDU_CLASSES, BindTransceiver, EnquireLink, SubmitSm

ENCODED = [encode(p) for p in SAMPLES]
COMMAND_IDS = sorted(PDU_CLASSES)
#: A cap smaller than the default so that "length just under the cap" cases stay cheap.
MAX_LENGTH = 4096

# -- generators ----------------------------------------------------------------------------------


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randrange(0, 600))


def random_headers(rng: random.Random) -> bytes:
    """Valid-looking headers (known command ids, plausible lengths) over random bodies."""
    out = bytearray()
    for _ in range(rng.randrange(1, 5)):
        body = rng.randbytes(rng.randrange(0, 200))
        length = rng.choice([16 + len(body), 16 + len(body), rng.randrange(0, 0x1_0000_0000)])
        out += struct.pack(
            ">IIII", length, rng.choice(COMMAND_IDS), rng.randrange(0, 3), rng.randrange(0, 1 << 32)
        )
        out += body
    return bytes(out)


def mutate(rng: random.Random, pdu: bytes) -> bytes:
    """One PDU with a few of: flipped bytes, cut or extended body, lying command_length,
    C-strings without their NUL, a TLV whose length runs past the end."""
    data = bytearray(pdu)
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(7)
        if kind == 0 and len(data) > HEADER_LENGTH:
            data[rng.randrange(HEADER_LENGTH, len(data))] = rng.randrange(256)
        elif kind == 1:
            del data[rng.randrange(HEADER_LENGTH, len(data) + 1) :]
        elif kind == 2:
            data += rng.randbytes(rng.randrange(1, 40))
        elif kind == 3:
            data = data.replace(b"\x00", b"A", rng.randrange(1, 4))
        elif kind == 4:
            data += struct.pack(">HH", rng.randrange(1 << 16), rng.randrange(1 << 16)) + b"xy"
        elif kind == 5:  # keep the length honest after the body changed
            struct.pack_into(">I", data, 0, len(data))
            continue
        else:  # lie about the length: off by one, tiny, huge
            struct.pack_into(
                ">I",
                data,
                0,
                rng.choice([len(data) - 1, len(data) + 1, 0, 15, 16, MAX_LENGTH, 0xFFFFFFFF]),
            )
        if rng.random() < 0.7:
            struct.pack_into(">I", data, 0, len(data))
    return bytes(data)


def mutated_stream(rng: random.Random) -> bytes:
    """1–5 PDUs, some intact and some mutated, concatenated (coalesced reads, §habit 1)."""
    parts = []
    for _ in range(rng.randrange(1, 6)):
        pdu = rng.choice(ENCODED)
        parts.append(mutate(rng, pdu) if rng.random() < 0.7 else pdu)
    return b"".join(parts)


GENERATORS: dict[str, Callable[[random.Random], bytes]] = {
    "random": random_bytes,
    "headers": random_headers,
    "mutated": mutated_stream,
}


def chunkings(rng: random.Random, stream: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "whole", [stream]
    yield "bytewise", [stream[i : i + 1] for i in range(len(stream))]
    cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randrange(1, 8))))
    points = [0, *cuts, len(stream)]
    yield "cuts", [stream[a:b] for a, b in itertools.pairwise(points) if b > a]


# -- the decoder invariant -----------------------------------------------------------------------


def check_decoder(chunks: list[bytes], max_command_length: int = MAX_LENGTH) -> tuple[int, int]:
    """Feed the chunks; assert the contract; return (PDUs decoded, protocol errors)."""
    decoder = Decoder(max_command_length=max_command_length)
    pdus = errors = 0
    fatal = False
    for chunk in chunks:
        decoder.receive_data(chunk)
        if fatal:
            assert decoder.buffered == 0  # input after a fatal error is discarded
            continue
        for _ in range(len(chunk) // HEADER_LENGTH + 2):  # bounded: no PDU is under 16 octets
            try:
                pdu = decoder.next_pdu()
            except RemoteProtocolError as exc:
                errors += 1
                assert exc.command_status != 0
                if exc.fatal:
                    fatal = True
                    assert decoder.buffered == 0
                    break
                continue
            if pdu is NEED_DATA:
                break
            pdus += 1
            encode(pdu)  # what was decoded can be encoded again
        else:
            raise AssertionError("decoder made no progress")
        assert decoder.buffered <= max_command_length + len(chunk)
    if fatal:  # and the error sticks: the stream cannot be resynchronised
        try:
            decoder.next_pdu()
        except RemoteProtocolError as exc:
            assert exc.fatal
        else:
            raise AssertionError("a fatal error did not stick")
    return pdus, errors


def test_decoder_fuzz_streams() -> None:
    cases = decoded = errors = 0
    for name, generate in GENERATORS.items():
        rng = random.Random(f"decoder-{name}")
        for _ in range(400):
            stream = generate(rng)
            for _, chunks in chunkings(rng, stream):
                got, bad = check_decoder(chunks)
                cases += 1
                decoded += got
                errors += bad
    assert cases == 3 * 400 * 3
    # The mutations reach both outcomes: PDUs decoded and protocol errors raised.
    assert decoded > 500 and errors > 500, (decoded, errors)


def test_same_stream_same_result_however_cut() -> None:
    """Chunking must not change what is decoded (coalesced and split reads, habit 1)."""
    rng = random.Random("cuts")
    for _ in range(300):
        stream = mutated_stream(rng)
        results = {check_decoder(chunks) for _, chunks in chunkings(rng, stream)}
        assert len(results) == 1, results


# -- the SMSC side: simulator connections fed through a fake transport ---------------------------


class FakeTransport(asyncio.Transport):
    """Collects what the connection writes; closing calls ``connection_lost`` like asyncio."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.written = bytearray()
        self.closing = False
        self.protocol: Any = None

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class LoopErrors:
    """Exceptions that escaped to the event loop, and ERROR records of cloudsms loggers."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.items.append(str(context.get("exception") or context.get("message")))

    def log_handler(self) -> logging.Handler:
        errors = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                errors.items.append(record.getMessage())

        return Handler(logging.ERROR)


BIND = encode(BindTransceiver(sequence_number=1, system_id="fuzz", password="pw"))


async def feed_connection(
    simulator: SmscSimulator, stream: bytes, chunks: list[bytes], bind_first: bool
) -> bytes:
    """One connection: optionally bind, feed the chunks, then an enquire_link; return output."""
    loop = asyncio.get_running_loop()
    transport = FakeTransport(loop)
    conn = simulator_connection(simulator)
    transport.protocol = conn
    conn.connection_made(transport)
    if bind_first:
        conn.data_received(BIND)
    for chunk in chunks:
        if transport.closing:
            break
        conn.data_received(chunk)
        await asyncio.sleep(0)
    if not transport.closing:
        conn.data_received(encode(EnquireLink(sequence_number=0x7FFFFFFF)))
    await asyncio.sleep(0)
    transport.close()
    await asyncio.sleep(0)
    return bytes(transport.written)


def simulator_connection(simulator: SmscSimulator) -> Any:
    from cloudsms.transport.server import SmscConnection

    return SmscConnection(simulator)


async def run_smsc_cases(count: int, seed: str) -> tuple[int, int, LoopErrors]:
    """(cases run, cases the SMSC wrote an answer in, errors that escaped)."""
    errors = LoopErrors()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(errors.loop_handler)
    handler = errors.log_handler()
    logging.getLogger("cloudsms").addHandler(handler)
    simulator = SmscSimulator(accounts={"fuzz": "pw"}, record_limit=100, bind_timeout_s=5)
    cases = answered = 0
    try:
        rng = random.Random(seed)
        for i in range(count):
            generate = list(GENERATORS.values())[i % len(GENERATORS)]
            stream = generate(rng)
            for _, chunks in chunkings(rng, stream):
                out = await feed_connection(
                    simulator, stream, chunks, bind_first=rng.random() < 0.7
                )
                cases += 1
                answered += bool(out)
        # After all that, a well-behaved ESME still binds and submits.
        transport = FakeTransport(loop)
        conn = simulator_connection(simulator)
        transport.protocol = conn
        conn.connection_made(transport)
        conn.data_received(BIND)
        submit = SubmitSm(sequence_number=2, destination_addr="85267000011", short_message=b"hi")
        conn.data_received(encode(submit))
        await asyncio.sleep(0.01)
        decoder = Decoder()
        decoder.receive_data(bytes(transport.written))
        answers = []
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            answers.append(pdu)
        assert [type(p).__name__ for p in answers] == ["BindTransceiverResp", "SubmitSmResp"]
        assert all(p.command_status == 0 for p in answers)
        transport.close()
        await asyncio.sleep(0)
    finally:
        logging.getLogger("cloudsms").removeHandler(handler)
        await simulator.stop()
    return cases, answered, errors


async def test_smsc_connection_survives_fuzz_streams() -> None:
    cases, answered, errors = await run_smsc_cases(150, "smsc")
    assert cases == 150 * 3
    assert answered > cases // 2  # the streams reached the server logic, not just the socket
    assert errors.items == []
