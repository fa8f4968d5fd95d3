"""A customer's ESME against `cloudsms serve` (role all) with the built-in simulator as carrier:
submit_sm over SMPP, delivery by the carrier, one deliver_sm receipt per message (issue 15)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from seed import seed_customer
from sqlalchemy import select

from cloudsms.services.operator import Operator
from cloudsms.simulator.receipts import ReceiptPolicy, Rule
from cloudsms.simulator.server import SmscSimulator
from cloudsms.smpp.constants import Tag
from cloudsms.smpp.pdu import BindTransceiver, DeliverSm, SubmitSm
from cloudsms.smpp.tlv import Tlv
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink

LONG_UCS2 = "您的验证码是123456，请勿向他人透露。" * 7  # 140 UCS-2 units: 3 segments


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_submit_over_smpp_and_get_one_receipt_per_message(
    store: Store, make_server: Any
) -> None:
    sim = SmscSimulator(
        "127.0.0.1",
        0,
        accounts={"cloudsms": "secret"},
        receipts=ReceiptPolicy(rules=[Rule("undeliverable", suffix="3")]),
    )
    await sim.start()
    try:
        seeded = seed_customer(store.engine, carrier_port=sim.port)
        Operator(store).add_smpp_account("acme", "acme1", password="s3cret", route=seeded.route)
        port = free_port()
        make_server(role="all", smpp_port=port)

        receipts: list[DeliverSm] = []

        async def on_deliver(pdu: Any) -> None:
            receipts.append(pdu)

        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(
            lambda: EsmeLink(
                name="esme", on_deliver=on_deliver, response_timeout_s=10, enquire_link_s=0
            ),
            "127.0.0.1",
            port,
        )
        await link.bind(BindTransceiver(sequence_number=1, system_id="acme1", password="s3cret"))
        submits = [
            ("85267000011", {"short_message": b"Your code is 4711"}),
            ("85267000013", {"short_message": b"Your code is 4712"}),
            (
                "85267000021",
                {
                    "data_coding": 8,
                    "tlvs": (Tlv(Tag.MESSAGE_PAYLOAD, LONG_UCS2.encode("utf-16-be")),),
                },
            ),
        ]
        uids = []
        for dest, fields in submits:
            resp = await link.send_request(
                SubmitSm(
                    sequence_number=link.session.sequence.next(),
                    destination_addr=dest,
                    registered_delivery=1,
                    **fields,
                )
            )
            assert resp.command_status == 0
            uids.append(resp.message_id)
        async with asyncio.timeout(30):
            while len(receipts) < 3:  # noqa: ASYNC110 (receipts arrive from another thread)
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # nothing more comes: one receipt per message
        states = {r.receipted_message_id: r.message_state for r in receipts}
        assert len(receipts) == 3 and states == {uids[0]: 2, uids[1]: 5, uids[2]: 2}
        # The long message went to the carrier as 3 segments and was billed for 3.
        assert any(m.text == LONG_UCS2 for m in sim.received)
        with store.engine.connect() as conn:
            fee = conn.execute(
                select(tables.messages.c.fee_micros).where(tables.messages.c.sms_uid == uids[2])
            ).scalar_one()
        assert fee == 3 * 50_000
        link.abort()
    finally:
        await sim.stop()
