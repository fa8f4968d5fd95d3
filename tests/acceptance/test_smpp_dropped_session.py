"""A customer's SMPP session dropped mid-flow loses no receipt (issue 15: Jasmin #616, #891).

The customer's ESME (our own ``EsmeLink``, over a real socket) binds as a transceiver to
``cloudsms`` (role all, in a thread; the carrier is the built-in simulator, which sends its
receipts over a couple of seconds), submits N messages asking for receipts and, once every
submit is answered and a few receipts have arrived, drops its TCP connection (abort: no unbind,
the receipt in hand unanswered, others in flight). It then binds again as a *receiver* on a new
connection and must get every receipt: at least once each, N distinct message ids, each the
SMS_UID its submit_sm_resp gave. A receipt goes twice only if it was unanswered when the
session dropped (at most the server's window per session).

Two ways to drop: ``reset`` (the customer's end closes the connection) and ``silent`` (it stops
reading and answering while the connection stays up, as when a NAT or firewall on the way
forgets it: no FIN, no RST). The server must close a session that leaves a deliver_sm
unanswered for its response timeout; before it did (found by this test), the silent session
stayed bound for good, kept its slot and a share of every round of receipts, and each round
(rounds serve every account) waited out the timeout: 29 of 40 receipts 58 s after the rebind.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from typing import Any

import pytest
from seed import seed_customer

from cloudsms.services.operator import Operator
from cloudsms.simulator.receipts import ReceiptPolicy, Uniform
from cloudsms.simulator.server import SmscSimulator
from cloudsms.smpp.pdu import BindReceiver, BindTransceiver, DeliverSm, SubmitSm
from cloudsms.storage.store import Store
from cloudsms.transport.esme import BindPdu, DeliverCallback, EsmeLink

N = 40
#: Receipts the first session takes before its connection drops.
DROP_AFTER = 5
#: Unanswered deliver_sm per session on the server's side (``OutboxSender.window``).
SERVER_WINDOW = 10
#: How long the server waits for a deliver_sm_resp (10 s by default; shorter here).
RESPONSE_TIMEOUT_S = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def connect(port: int, on_deliver: DeliverCallback, bind: BindPdu) -> EsmeLink:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(
        lambda: EsmeLink(name="customer", on_deliver=on_deliver, response_timeout_s=10,
                         enquire_link_s=0),
        "127.0.0.1",
        port,
    )  # fmt: skip
    await link.bind(bind)
    return link


@pytest.mark.parametrize("drop", ["reset", "silent"])
async def test_receipts_pending_when_a_session_drops_arrive_after_a_rebind(
    store: Store, make_server: Any, drop: str
) -> None:
    """``reset``: the customer's end closes (TCP reset); ``silent``: it stops reading and
    answering but the connection stays up, as when a NAT or a firewall on the way drops it."""
    sim = SmscSimulator(
        "127.0.0.1", 0, accounts={"cloudsms": "secret"}, seed=17,
        receipts=ReceiptPolicy(delay=Uniform(0.2, 2.5)),
    )  # fmt: skip
    await sim.start()
    first: list[str] = []
    second: list[str] = []
    links: list[EsmeLink] = []
    never = asyncio.Event()
    try:
        seeded = seed_customer(store.engine, carrier_port=sim.port)
        Operator(store).add_smpp_account("acme", "acme1", password="s3cret", route=seeded.route)
        server = make_server(role="all", smpp_port=free_port())
        port = server.settings.smpp_port
        smpp = server.platform.smpp
        assert smpp is not None
        smpp.receipts.retry_base_s = 0.5  # a lost session's receipts come back in 0.5 s, not 5
        smpp.receipts.response_timeout_s = RESPONSE_TIMEOUT_S
        dropped = asyncio.Event()

        async def on_first(pdu: Any) -> None:
            assert isinstance(pdu, DeliverSm)
            first.append(pdu.receipted_message_id or "")
            if len(first) >= DROP_AFTER:
                if drop == "reset":
                    links[0].abort()  # the TCP connection drops: this receipt stays unanswered
                elif links[0].transport is not None:
                    links[0].transport.pause_reading()
                dropped.set()
                await never.wait()  # never answered

        async def on_second(pdu: Any) -> None:
            assert isinstance(pdu, DeliverSm)
            second.append(pdu.receipted_message_id or "")

        async with asyncio.timeout(60):
            links.append(
                await connect(port, on_first, BindTransceiver(sequence_number=1,
                              system_id="acme1", password="s3cret"))
            )  # fmt: skip
            link = links[0]
            resps = await asyncio.gather(
                *(
                    link.send_request(
                        SubmitSm(
                            sequence_number=link.session.sequence.next(),
                            destination_addr=f"8526100{i:04d}",
                            short_message=f"Your code is {i:04d}".encode(),
                            registered_delivery=1,
                        )
                    )
                    for i in range(N)
                )
            )
            assert [r.command_status for r in resps] == [0] * N
            uids = [r.message_id for r in resps]
            await dropped.wait()
            pending = N - len(set(first))
            assert pending >= N // 2, "the drop came too late to leave receipts pending"
            await asyncio.sleep(0.3)
            links.append(
                await connect(port, on_second, BindReceiver(sequence_number=1,
                              system_id="acme1", password="s3cret"))
            )  # fmt: skip
            rebound = time.monotonic()
            try:
                async with asyncio.timeout(RESPONSE_TIMEOUT_S + 10):
                    while set(first[: DROP_AFTER - 1]) | set(second) != set(uids):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
            except TimeoutError:
                got = len(set(first[: DROP_AFTER - 1]) | set(second))
                raise AssertionError(
                    f"{got} of {N} receipts {RESPONSE_TIMEOUT_S + 10} s after the rebind"
                ) from None
            took = time.monotonic() - rebound
            await asyncio.sleep(1.0)  # anything still to come would come now
            sessions = smpp.list_sessions()
            assert [s.bind for s in sessions] == ["rx"]  # the dropped one is gone
    finally:
        for link in links:
            link.abort()
        never.set()
        await sim.stop()

    answered_before = first[: DROP_AFTER - 1]  # the last one in hand was never answered
    got = collections.Counter(answered_before + second)
    assert set(got) == set(uids) and len(got) == N  # none lost, all N ids
    twice = [uid for uid, n in got.items() if n > 1]
    assert all(n <= 2 for n in got.values()), got
    # Only receipts unanswered at the drop come again: the one in hand and those in flight.
    assert len(twice) <= SERVER_WINDOW, twice
    # The receipts in hand when the connection dropped (read, never answered) came again.
    assert set(first[DROP_AFTER - 1 :]) <= set(second)
    messages = store.customer_messages(seeded.customer_id, uids)
    assert {m.state for m in messages} == {"delivered"} and len(messages) == N
    print(
        f"\ndropped session ({drop}): {N} receipts, {len(set(first))} seen before the drop, "
        f"{len(second)} after the rebind ({took:.1f} s for the last), {len(twice)} twice"
    )
