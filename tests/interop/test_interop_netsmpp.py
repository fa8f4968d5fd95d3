"""Interop with Net::SMPP (Perl): our SmppClient against its SMSC, and its ESME against our
simulator. Both scripts live next to this file and are started as subprocesses on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from cloudsms.domain.routing import ConnectorConfig
from cloudsms.simulator import SmscSimulator
from cloudsms.smpp.constants import EsmClass
from cloudsms.smpp.encoding import split_for_submit, udh_concat
from cloudsms.smpp.pdu import DataSm, DeliverSm, SubmitSm
from cloudsms.smpp.receipt import receipt_from_pdu
from cloudsms.transport import SmppClient

pytestmark = pytest.mark.usefixtures("net_smpp")

HERE = Path(__file__).parent
LONG_UCS2 = "互通测试：这是一条由三段组成的长短信，发送给 Net::SMPP 的服务器。" * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def read_lines(proc: asyncio.subprocess.Process, until: str) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        raw = await proc.stdout.readline()
        if not raw:
            return lines
        line = raw.decode().rstrip("\n")
        lines.append(line)
        if line.startswith(until):
            return lines


async def test_our_client_against_a_net_smpp_smsc() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "perl",
        str(HERE / "netsmpp_smsc.pl"),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    inbox: list[DeliverSm | DataSm] = []
    got_all = asyncio.Event()

    async def on_deliver(pdu: DeliverSm | DataSm) -> None:
        inbox.append(pdu)
        if len(inbox) == 4:
            got_all.set()

    cfg = ConnectorConfig(
        id=1, name="perl", host="127.0.0.1", port=port, system_id="acme", password="secret"
    )
    client = SmppClient(cfg, on_deliver=on_deliver, reconnect_initial_s=0.1)
    try:
        async with asyncio.timeout(30):
            assert (await read_lines(proc, "LISTENING"))[-1].startswith("LISTENING")
            await client.start()
            assert await client.wait_bound(10), client.stats().last_error
            common = {
                "sequence_number": 0,
                "source_addr": "CloudSMS",
                "source_addr_ton": 5,
                "dest_addr_ton": 1,
                "dest_addr_npi": 1,
                "destination_addr": "85261234567",
                "registered_delivery": 1,
            }
            first = await client.submit(SubmitSm(short_message=b"Hello Perl", **common))
            parts = split_for_submit(LONG_UCS2, "ucs2")
            assert len(parts) == 3
            long_resps = [
                await client.submit(
                    SubmitSm(
                        short_message=udh_concat(7, 3, i) + part,
                        esm_class=EsmClass.UDHI,
                        data_coding=8,
                        **common,
                    )
                )
                for i, part in enumerate(parts, 1)
            ]
            await got_all.wait()
            await client.stop()
            lines = await read_lines(proc, "BYE")
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await client.stop()
    ids = [first.message_id] + [r.message_id for r in long_resps]
    assert ids == ["perl0001", "perl0002", "perl0003", "perl0004"]
    receipts = [receipt_from_pdu(p) for p in inbox]
    assert [r.message_id for r in receipts if r] == ids  # TLV and text-only receipts alike
    assert all(r is not None and r.state == "DELIVRD" for r in receipts)
    submits = [line.split() for line in lines if line.startswith("SUBMIT")]
    assert [s[1] for s in submits] == ids
    payload = b"".join(bytes.fromhex(s[6])[6:] for s in submits[1:])
    assert payload.decode("utf-16-be") == LONG_UCS2
    assert all(s[2] == "64" and s[3] == "8" for s in submits[1:])  # UDHI, UCS-2
    assert lines.count("DELIVER_RESP 0") == 4  # our deliver_sm_resp, after on_deliver
    assert "UNBIND" in lines  # stop() unbound gracefully


async def test_net_smpp_esme_against_our_simulator() -> None:
    sim = SmscSimulator("127.0.0.1", 0, accounts={"acme": "secret"}, seed=3)
    await sim.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "perl",
            str(HERE / "netsmpp_esme.pl"),
            str(sim.port),
            LONG_UCS2.encode("utf-16-be").hex(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        await sim.stop()
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "BIND 0"
    resp_ids = [line.split()[2] for line in lines if line.startswith("SUBMIT_RESP 0 ")]
    assert len(resp_ids) == 4
    receipts = [line.split(" ", 3) for line in lines if line.startswith("RECEIPT")]
    assert sorted(r[2] for r in receipts) == sorted(resp_ids)  # receipted_message_id TLV
    assert all(r[1] == "4" and "stat:DELIVRD" in r[3] for r in receipts)
    texts = sorted(m.text for m in sim.received)
    assert texts == sorted(["Hello from Net::SMPP", LONG_UCS2])
    long_message = next(m for m in sim.received if m.segments == 3)
    assert long_message.data_coding == 8 and long_message.concatenation == "udh8"
