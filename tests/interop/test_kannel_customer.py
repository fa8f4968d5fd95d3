"""Interop with Kannel 1.4 (Debian ``kannel``) as a *customer* of our SMPP server.

Kannel's bearerbox binds to our SMPP server (``cloudsms`` role all, in a thread) with an SMPP
account of the customer, as a transceiver (``smsc = smpp``); its smsbox takes HTTP sendsms
requests with a ``dlr-url`` and ``dlr-mask``. A GSM message and a 3-segment UCS-2 message go
through our platform to the carrier (the built-in simulator); our receipts (deliver_sm) come
back to Kannel, which matches them to its messages and calls the dlr-url (a small HTTP server
in this test) with the final state of each. Ports are free ones on 127.0.0.1, the boxes are
killed on the way out; without bearerbox the test skips (fails under CI), as test_kannel does.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
from kannel_config import kannel_conf
from seed import seed_customer
from test_kannel import accepts, box, dlr_server, kannel_boxes, until

from cloudsms.services.operator import Operator
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage.store import Store

__all__ = ["kannel_boxes"]  # the fixture, used by name

SHORT_GSM = "Hello from Kannel, a customer: 5 @ 2 = £10, ok?"
#: 176 UCS-2 units: three parts of 67 (Kannel's split and ours alike).
LONG_UCS2 = "互通测试：客户的 Kannel 经我们的 SMPP 服务器发送一条长短信，需要拆成三段。" * 4
SYSTEM_ID, PASSWORD = "kannel1", "k4nnel"
SOURCE, DESTINATION = "CloudSMS", "85261234567"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_kannel_customer_gets_final_dlrs_through_our_platform(
    kannel_boxes: tuple[str, str], tmp_path: Path, store: Store, make_server: Any
) -> None:
    bearerbox, smsbox = kannel_boxes
    sim = SmscSimulator("127.0.0.1", 0, accounts={"cloudsms": "secret"}, seed=13)
    await sim.start()
    dlrs: list[dict[str, str]] = []

    def final(tag: str) -> list[dict[str, str]]:
        return [d for d in dlrs if d["tag"] == tag and d["status"] == "1"]

    try:
        seeded = seed_customer(store.engine, carrier_port=sim.port)
        Operator(store).add_smpp_account("acme", SYSTEM_ID, password=PASSWORD, route=seeded.route)
        server = make_server(role="all", smpp_port=free_port())
        smpp = server.platform.smpp
        assert smpp is not None
        admin, boxport, sendsms = free_port(), free_port(), free_port()
        conf = tmp_path / "kannel.conf"
        conf.write_text(
            kannel_conf(
                tmp_path, smsc_id="cloudsms", smsc_port=server.settings.smpp_port,
                username=SYSTEM_ID, password=PASSWORD, admin=admin, box=boxport, sendsms=sendsms,
            )
        )  # fmt: skip

        def bound() -> bool:
            return any(s.system_id == SYSTEM_ID for s in smpp.list_sessions())

        async with (
            asyncio.timeout(60),
            dlr_server(dlrs) as dlr_port,
            box([bearerbox, str(conf)], tmp_path / "bearerbox.out") as bb,
        ):
            await until(lambda: bound() and accepts(boxport), "bearerbox's bind", tmp_path, (bb,))
            async with box([smsbox, str(conf)], tmp_path / "smsbox.out") as sb:
                await until(lambda: accepts(sendsms), "smsbox's sendsms port", tmp_path, (bb, sb))
                async with aiohttp.ClientSession() as http:
                    for tag, text, coding in (
                        ("short", SHORT_GSM, {}),
                        ("long", LONG_UCS2, {"coding": "2", "charset": "UTF-8"}),
                    ):
                        params = {
                            "username": "tester",
                            "password": "tester",
                            "from": SOURCE,
                            "to": DESTINATION,
                            "text": text,
                            "dlr-mask": "31",
                            # %d: DLR type, %F: our message id (the SMS_UID), %A: receipt text
                            "dlr-url": f"http://127.0.0.1:{dlr_port}/dlr?tag={tag}"
                            "&status=%d&fid=%F&answer=%A",
                            **coding,
                        }
                        url = f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms"
                        async with http.get(url, params=params) as resp:
                            body = await resp.text()
                        assert resp.status == 202 and body.startswith("0: Accepted"), body
                await until(
                    lambda: bool(final("short") and final("long")),
                    "both final DLRs", tmp_path, (bb, sb),
                )  # fmt: skip
                await asyncio.sleep(0.5)  # nothing more comes: one final DLR per message
    finally:
        await sim.stop()

    # What our platform accepted and stored from Kannel's submit_sm PDUs.
    [short] = final("short")
    [long] = final("long")
    uids = [short["fid"], long["fid"]]
    messages = {m.sms_uid: m for m in store.customer_messages(seeded.customer_id, uids)}
    assert messages[short["fid"]].content == SHORT_GSM  # GSM 03.38 '@' and '£' read right
    assert messages[short["fid"]].segments == 1
    assert messages[long["fid"]].content == LONG_UCS2 and messages[long["fid"]].segments == 3
    assert {m.state for m in messages.values()} == {"delivered"}
    # Kannel matched our receipt (receipted_message_id = the SMS_UID) to each message.
    for dlr in (short, long):
        assert dlr["answer"].startswith(f"id:{dlr['fid']} sub:001 dlvrd:001 "), dlr
        assert "stat:DELIVRD err:000" in dlr["answer"]
    # Each was also reported accepted by the SMSC (8: submit_sm_resp), and nothing else failed.
    for tag in ("short", "long"):
        statuses = sorted(d["status"] for d in dlrs if d["tag"] == tag)
        assert statuses == ["1", "8"], dlrs
    # Kannel sent 4 submit_sm (its debug log dumps each PDU): the long message as 3 UDH parts,
    # esm_class 0x43 (UDHI, store-and-forward mode bits set), which our server reassembled.
    dumped = (tmp_path / "bearerbox.log").read_text(errors="replace")
    assert dumped.count("type_name: submit_sm\n") == 4
    assert dumped.count("esm_class: 67 = 0x00000043") == 3
    # The carrier (the simulator) got both texts, the long one again in three UCS-2 parts.
    texts = {m.text: m for m in sim.received}
    assert set(texts) == {SHORT_GSM, LONG_UCS2}
    assert texts[LONG_UCS2].segments == 3 and texts[LONG_UCS2].data_coding == 8
