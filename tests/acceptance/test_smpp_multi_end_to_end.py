"""A customer's ESME against `cloudsms serve` (role all) with the built-in simulator as carrier:
submit_multi delivered to every destination with one receipt each, all naming the submit's
message_id; a validity_period passed on to the carrier (issue 15)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from typing import Any

from seed import seed_customer
from sqlalchemy import select

from cloudsms.services.operator import Operator
from cloudsms.simulator.receipts import ReceiptPolicy, Rule
from cloudsms.simulator.server import SmscSimulator
from cloudsms.smpp.pdu import BindTransceiver, DeliverSm, Pdu, SmeAddress, SubmitMulti, SubmitSm
from cloudsms.smpp.times import parse_smpp_time
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink
from cloudsms.transport.server import SmscConnection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Carrier(SmscSimulator):
    """The simulator, keeping every submit_sm it is sent (to read fields it does not record)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submits: list[SubmitSm] = []

    def handle_request(self, conn: SmscConnection, pdu: Pdu) -> None:
        if isinstance(pdu, SubmitSm):
            self.submits.append(pdu)
        super().handle_request(conn, pdu)


async def test_submit_multi_and_validity_through_the_carrier(
    store: Store, make_server: Any
) -> None:
    sim = Carrier(
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
        multi = await link.send_request(
            SubmitMulti(
                sequence_number=link.session.sequence.next(),
                dest_addresses=(
                    SmeAddress(1, 1, "85267000011"),
                    SmeAddress(1, 1, "85267000013"),
                    SmeAddress(1, 1, "85267000015"),
                ),
                short_message=b"Meeting moved to 3pm",
                registered_delivery=1,
            )
        )
        assert multi.command_status == 0 and multi.unsuccess_smes == ()
        valid = await link.send_request(
            SubmitSm(
                sequence_number=link.session.sequence.next(),
                destination_addr="85267000021",
                short_message=b"Your code is 4711",
                validity_period="000000010000000R",  # one hour
                registered_delivery=1,
            )
        )
        assert valid.command_status == 0
        async with asyncio.timeout(30):
            while len(receipts) < 4:  # noqa: ASYNC110 (receipts arrive from another thread)
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # nothing more comes: one receipt per message
        assert len(receipts) == 4
        states = {(r.receipted_message_id, r.source_addr): r.message_state for r in receipts}
        assert states == {
            (multi.message_id, "85267000011"): 2,
            (multi.message_id, "85267000013"): 5,  # the carrier's undeliverable rule
            (multi.message_id, "85267000015"): 2,
            (valid.message_id, "85267000021"): 2,
        }
        # Each destination went to the carrier as a message of its own.
        assert sorted(p.destination_addr for p in sim.submits) == [
            "85267000011",
            "85267000013",
            "85267000015",
            "85267000021",
        ]
        # The validity went on to the carrier as the absolute deadline we store.
        with store.engine.connect() as conn:
            expires_ms = conn.execute(
                select(tables.messages.c.expires_ms).where(
                    tables.messages.c.sms_uid == valid.message_id
                )
            ).scalar_one()
        [carried] = [p for p in sim.submits if p.destination_addr == "85267000021"]
        now = dt.datetime.now(dt.UTC)
        deadline = parse_smpp_time(carried.validity_period, now)
        assert deadline is not None and int(deadline.timestamp()) == expires_ms // 1000
        assert all(p.validity_period == "" for p in sim.submits if p is not carried)
        link.abort()
    finally:
        await sim.stop()
