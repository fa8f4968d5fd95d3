"""Interop with Net::SMPP (Perl) as a *customer*: its ESME binds to our SMPP server (``cloudsms``
role all, in a thread) as a transceiver, sends a GSM message and a 3-part UCS-2 message (UDH),
and gets each message's SMS_UID and one deliver_sm receipt per message, which it answers. The
carrier is the built-in simulator; everything goes over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from seed import seed_customer

from cloudsms.services.operator import Operator
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage.store import Store

pytestmark = pytest.mark.usefixtures("net_smpp")

HERE = Path(__file__).parent
SHORT_GSM = "Hello from Net::SMPP, a customer"
LONG_UCS2 = "互通测试：这是一条由三段组成的长短信，客户经 Net::SMPP 提交。" * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_net_smpp_customer_submits_and_gets_one_receipt_per_message(
    store: Store, make_server: Any
) -> None:
    sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"}, seed=5)
    await sim.start()
    try:
        seeded = seed_customer(store.engine, carrier_port=sim.port)
        Operator(store).add_smpp_account("acme", "perl1", password="s3cret", route=seeded.route)
        server = make_server(role="all", smpp_port=free_port())
        encoded = LONG_UCS2.encode("utf-16-be")
        assert 2 * 134 < len(encoded) <= 3 * 134  # three parts of 67 UCS-2 units
        proc = await asyncio.create_subprocess_exec(
            "perl", str(HERE / "netsmpp_customer.pl"), str(server.settings.smpp_port),
            "perl1", "s3cret", encoded.hex(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(40):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        await sim.stop()
    assert proc.returncode == 0, err.decode() + out.decode()
    lines = out.decode().splitlines()
    assert lines[0] == "BIND 0"
    resps = [line.split() for line in lines if line.startswith("SUBMIT_RESP")]
    assert [r[1] for r in resps] == ["0"] * 4, lines
    # The GSM message has its SMS_UID; the three parts share their message's.
    by_id: dict[str, int] = {}
    for r in resps:
        by_id[r[2]] = by_id.get(r[2], 0) + 1
    assert sorted(by_id.values()) == [1, 3], lines
    short_uid = next(uid for uid, n in by_id.items() if n == 1)
    long_uid = next(uid for uid, n in by_id.items() if n == 3)

    receipts = [line.split(" ", 4) for line in lines if line.startswith("RECEIPT")]
    assert len(receipts) == 2, lines  # one per message, not per part
    for _, esm_class, rid, state, text in receipts:
        assert esm_class == "4" and state == "2"  # a delivery receipt, DELIVERED
        assert text.startswith(f"id:{rid} sub:001 dlvrd:001 ") and "stat:DELIVRD err:000" in text
    assert sorted(r[2] for r in receipts) == sorted([short_uid, long_uid])
    assert lines[-2:] == ["UNBIND 0", "DONE 4 2"]

    messages = {m.sms_uid: m for m in store.customer_messages(seeded.customer_id, list(by_id))}
    assert messages[short_uid].content == SHORT_GSM and messages[short_uid].segments == 1
    assert messages[long_uid].content == LONG_UCS2 and messages[long_uid].segments == 3
    # What the carrier got: the same texts, the long one again in three UCS-2 parts.
    texts = {m.text: m for m in sim.received}
    assert set(texts) == {SHORT_GSM, LONG_UCS2}
    assert texts[LONG_UCS2].segments == 3 and texts[LONG_UCS2].data_coding == 8
