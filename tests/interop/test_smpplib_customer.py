"""Interop with smpplib (PyPI), an independent Python ESME, as a customer of `cloudsms serve`:
bind, submit a GSM and a long UCS-2 message, get each SMS_UID and then one receipt each."""

from __future__ import annotations

import socket
import threading
from typing import Any

import smpplib.client
import smpplib.consts
from seed import seed_customer

from cloudsms.services.operator import Operator
from cloudsms.storage.store import Store

LONG_UCS2 = "独立客户端互通：用 smpplib 经 SMPP 提交一条长短信，并接收回执。" * 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_smpplib_submits_and_receives_receipts(store: Store, make_server: Any) -> None:
    seeded = seed_customer(store.engine)
    Operator(store).add_smpp_account("acme", "acme1", password="s3cret", route=seeded.route)
    port = free_port()
    make_server(smpp_port=port)

    sent: list[str] = []
    receipts: list[Any] = []
    lock = threading.Lock()

    def on_sent(pdu: Any) -> None:
        with lock:
            sent.append(pdu.message_id.decode())

    def on_received(pdu: Any) -> int:
        with lock:
            receipts.append(pdu)
        return 0

    client = smpplib.client.Client("127.0.0.1", port, timeout=10)
    client.set_message_sent_handler(on_sent)
    client.set_message_received_handler(on_received)
    client.connect()
    try:
        client.bind_transceiver(system_id="acme1", password="s3cret")
        for text, coding, dest in (
            (b"Hello from smpplib", smpplib.consts.SMPP_ENCODING_DEFAULT, "85261234561"),
            (LONG_UCS2.encode("utf-16-be"), smpplib.consts.SMPP_ENCODING_ISO10646, "85261234562"),
        ):
            client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr="smpplib",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                destination_addr=dest,
                short_message=b"",
                message_payload=text,
                data_coding=coding,
                registered_delivery=True,
            )
        while len(sent) < 2:
            client.read_once()
        for uid in sent:  # what the dispatcher writes when the carrier says delivered
            store.enqueue_report_now(
                sms_uid=uid,
                customer_id=seeded.customer_id,
                sms_state=2,
                result_desc="DELIVRD",
                report_ms=store.now_ms(),
            )
        while len(receipts) < 2:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    messages = {m.sms_uid: m for m in store.customer_messages(seeded.customer_id, sent)}
    assert set(messages) == set(sent)
    assert messages[sent[1]].segments == 2 and messages[sent[1]].content == LONG_UCS2
    got = {p.receipted_message_id.decode().rstrip("\0"): p for p in receipts}
    assert set(got) == set(sent)
    assert all(b"stat:DELIVRD" in p.short_message for p in receipts)
