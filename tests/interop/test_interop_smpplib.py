"""Interop with smpplib (PyPI), an independent Python ESME, driving our simulator."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.gsm

from cloudsms.simulator import ReceiptPolicy, Rule, SmscSimulator
from cloudsms.smpp.receipt import parse_receipt_text

LONG_UCS2 = "独立客户端互通：用 smpplib 发送一条三段的 UCS-2 长短信，并接收回执。" * 4


def run_smpplib(port: int) -> dict[str, Any]:
    """Bind, submit a GSM and a long UCS-2 message, collect receipts, unbind (blocking)."""
    sent: list[str] = []
    receipts: list[Any] = []
    client = smpplib.client.Client("127.0.0.1", port, timeout=10)
    lock = threading.Lock()

    def on_sent(pdu: Any) -> None:
        with lock:
            sent.append(pdu.message_id.decode())

    def on_received(pdu: Any) -> int:
        with lock:
            receipts.append(pdu)
        return 0

    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_received)
    client.connect()
    try:
        client.bind_transceiver(system_id="acme", password="secret")
        messages = [("Hello from smpplib", "85261234561"), (LONG_UCS2, "85261234562")]
        for text, dest in messages:
            parts, coding, esm_class = smpplib.gsm.make_parts(text)
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                    source_addr="smpplib",
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                    destination_addr=dest,
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=True,
                )
        while len(receipts) < 4 or len(sent) < 4:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return {"sent": sent, "receipts": receipts}


async def test_smpplib_client_against_our_simulator() -> None:
    policy = ReceiptPolicy(rules=[Rule("undeliverable", suffix="2")])
    sim = SmscSimulator("127.0.0.1", 0, accounts={"acme": "secret"}, receipts=policy, seed=5)
    await sim.start()
    try:
        async with asyncio.timeout(30):
            result = await asyncio.to_thread(run_smpplib, sim.port)
    finally:
        await sim.stop()
    sent, receipts = result["sent"], result["receipts"]
    assert len(sent) == 4 and len(set(sent)) == 4
    by_id = {}
    for pdu in receipts:
        assert pdu.esm_class & 0x3C == 0x04
        tlv_id = pdu.receipted_message_id.decode().rstrip("\0")
        parsed = parse_receipt_text(pdu.short_message.decode("ascii"))
        assert parsed is not None and parsed.message_id == tlv_id
        by_id[tlv_id] = parsed.state
    assert set(by_id) == set(sent)
    assert sorted(by_id.values()) == ["DELIVRD", "UNDELIV", "UNDELIV", "UNDELIV"]
    texts = {m.destination_addr: m for m in sim.received}
    assert texts["85261234561"].text == "Hello from smpplib"
    long_message = texts["85261234562"]
    assert long_message.text == LONG_UCS2
    assert long_message.segments == 3 and long_message.data_coding == 8
