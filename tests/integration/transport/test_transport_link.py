"""Link-level behaviour: throughput limit, keepalive, unbind, stop, hostile input, the CLI."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from transport_helpers import (
    ClientFactory,
    Inbox,
    SimFactory,
    config,
    eventually,
    submit_pdu,
)

from cloudsms.simulator import NoResponse
from cloudsms.smpp.codec import NEED_DATA, Decoder, encode
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.pdu import (
    BindTransceiver,
    BindTransceiverResp,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)
from cloudsms.transport import ConnectionLost, NotBound

S = CommandStatus


async def test_throughput_limit(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    client = await make_client(config(sim.port, throughput=20, window=50))
    async with asyncio.timeout(10):
        await asyncio.gather(*(client.submit(submit_pdu()) for _ in range(30)))
    times = sorted(seg.at for seg in sim.segments)
    span = times[-1] - times[0]
    # 30 segments at 20/s with a burst of 2: (30 - 2) / 20 = 1.4 s.
    assert 1.25 <= span <= 2.0, span
    for i, t in enumerate(times):  # no one-second window holds more than rate + burst
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 22


async def test_enquire_link_keeps_an_idle_link(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    client = await make_client(config(sim.port, enquire_link_s=1))
    await asyncio.sleep(2.3)
    assert sim.enquire_links >= 2
    stats = client.stats()
    assert stats.reconnects == 0 and client.state == "bound"


async def test_unbind_from_the_smsc(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    client = await make_client(config(sim.port))
    (conn,) = sim.connections
    resp = await conn.send_request(Unbind(sequence_number=conn.session.sequence.next()))
    assert resp.command_status == 0  # the client answered unbind_resp (§4.2.2)
    await eventually(lambda: client.stats().reconnects == 1)
    assert await client.wait_bound(5)
    assert (await client.submit(submit_pdu())).command_status == 0


async def test_stop_fails_in_flight_with_connection_lost(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(behaviour=NoResponse())
    client = await make_client(config(sim.port), unbind_timeout_s=0.3)
    task = asyncio.create_task(client.submit(submit_pdu()))
    await eventually(lambda: sim.submit_count == 1)
    await client.stop()
    async with asyncio.timeout(2):
        try:
            await task
            raise AssertionError("expected ConnectionLost")
        except ConnectionLost:
            pass
    assert client.state == "stopped" and not client.available
    try:
        await client.submit(submit_pdu())
        raise AssertionError("expected NotBound")
    except NotBound:
        pass


async def test_receipt_crossing_our_unbind_is_stored_and_answered(make_client: ClientFactory):
    """An SMSC that wrote a receipt before it read our unbind gets its deliver_sm_resp ESME_ROK.

    A scripted SMSC on a real socket: it answers the bind, and on our unbind first sends a
    deliver_sm receipt, then the unbind_resp. The receipt reaches on_deliver and is answered before
    the link closes (a refusal could make a carrier drop the receipt).
    """
    seen: list[Pdu] = []

    async def smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = Decoder()
        while data := await reader.read(65536):
            decoder.receive_data(data)
            while (pdu := decoder.next_pdu()) is not NEED_DATA:
                seen.append(pdu)
                if isinstance(pdu, BindTransceiver):
                    writer.write(encode(BindTransceiverResp(sequence_number=pdu.sequence_number)))
                elif isinstance(pdu, Unbind):
                    receipt = DeliverSm(
                        sequence_number=900, esm_class=0x04,
                        short_message=b"id:7F sub:001 dlvrd:001 submit date:2611260100 "
                        b"done date:2611260101 stat:DELIVRD err:000 text:",
                    )  # fmt: skip
                    writer.write(encode(receipt))
                    writer.write(encode(UnbindResp(sequence_number=pdu.sequence_number)))
        writer.close()

    server = await asyncio.start_server(smsc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    inbox = Inbox()

    async def store_slowly(pdu: DeliverSm | DataSm) -> None:
        await asyncio.sleep(0.2)  # the store's commit
        await inbox(pdu)

    async with server:
        client = await make_client(config(port), store_slowly, unbind_timeout_s=2)
        await client.stop()
        await eventually(lambda: any(isinstance(p, DeliverSmResp) for p in seen))
    assert [p.short_message[:5] for p in inbox.pdus] == [b"id:7F"]
    answers = [p for p in seen if isinstance(p, DeliverSmResp)]
    assert answers == [DeliverSmResp(sequence_number=900)]  # ESME_ROK, not ESME_RINVBNDSTS


def _read_pdus(sock: socket.socket, decoder: Decoder, count: int) -> list[Pdu]:
    out: list[Pdu] = []
    while len(out) < count:
        data = sock.recv(65536)
        if not data:
            break
        decoder.receive_data(data)
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            out.append(pdu)
    return out


def _hostile_session(port: int) -> tuple[list[Pdu], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        decoder = Decoder()
        bind = BindTransceiver(sequence_number=1, system_id="acme", password="secret")
        sock.sendall(encode(bind))
        sock.sendall(struct.pack(">IIII", 16, 0x00000777, 0, 2))  # unknown command_id
        sock.sendall(struct.pack(">IIII", 20, 0x00000004, 0, 3) + b"\xff" * 4)  # truncated body
        got = _read_pdus(sock, decoder, 3)
        sock.sendall(struct.pack(">IIII", 0x7FFFFFFF, 4, 0, 4) + b"garbage")  # huge length
        got += _read_pdus(sock, decoder, 1)
        rest = sock.recv(100)  # then the server closes the connection
    return got, rest


async def test_hostile_input_is_answered_and_isolated(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim()
    client = await make_client(config(sim.port))
    got, rest = await asyncio.to_thread(_hostile_session, sim.port)
    assert [type(p).__name__ for p in got] == [
        "BindTransceiverResp",
        "GenericNack",
        "SubmitSmResp",
        "GenericNack",
    ]
    assert got[1].command_status == S.ESME_RINVCMDID and got[1].sequence_number == 2
    assert got[2].command_status == S.ESME_RINVCMDLEN and got[2].sequence_number == 3
    assert isinstance(got[3], GenericNack) and got[3].command_status == S.ESME_RINVCMDLEN
    assert rest == b""  # closed after the fatal error
    # The other client never noticed.
    assert (await client.submit(submit_pdu())).command_status == 0
    assert client.stats().reconnects == 0


async def test_unbound_garbage_is_closed_after_bind_timeout(make_sim: SimFactory):
    sim = await make_sim(bind_timeout_s=0.3)

    def idle() -> bytes:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
            return sock.recv(100)

    start = time.monotonic()
    assert await asyncio.to_thread(idle) == b""
    assert time.monotonic() - start < 3


async def test_cli_runs_the_simulator(make_client: ClientFactory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("cloudsms")
    args = ["--port", str(port), "--account", "acme:secret", "--id-format", "decimal"]
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "smsc-sim",
        *args,
        "--behaviour",
        "error:ESME_RINVDSTADR:2",
        "--quiet",
        stderr=subprocess.PIPE,
    )
    try:
        client = await make_client(config(port), bound=False)
        assert await client.wait_bound(15)
        first = await client.submit(submit_pdu())
        second = await client.submit(submit_pdu())
        assert first.command_status == 0 and first.message_id.isdigit()
        assert second.command_status == S.ESME_RINVDSTADR
        await client.stop()
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
    assert proc.returncode == 0, err
