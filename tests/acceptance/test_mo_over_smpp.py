"""Inbound messages (MO) over the customers' SMPP sessions, on real sockets.

The built-in SMSC simulator (the carrier) sends MO deliver_sm to the platform (role "all", with
the customers' SMPP server); the MO is routed by inbound number to a customer with an SMPP
account taking MOs, and the customer's ESME (our own ``EsmeLink``, bound RX or TRX) receives it
as deliver_sm — never its HTTP MO endpoint, a real HTTP server that must stay silent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from mo_callback import MoCallback
from seed import add_carrier, bump, seed_customer
from simulator_thread import ThreadedSimulator
from sqlalchemy import select
from typer.testing import CliRunner

from cloudsms.cli import app
from cloudsms.services.operator import Operator
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import BindReceiver, BindTransceiver, DeliverSm
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import BindPdu, EsmeLink

pytestmark = pytest.mark.slow

HANDSET, NUMBER = "85261234567", "85230001234"


class Carrier(ThreadedSimulator):
    """The carrier: the simulator in a thread, sending the handset's messages to NUMBER."""

    async def send_mo(self, text: str, **kw: Any) -> int:  # type: ignore[override]
        return await asyncio.to_thread(super().send_mo, HANDSET, NUMBER, text, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def callback() -> Iterator[MoCallback]:
    sink = MoCallback()
    yield sink
    sink.close()


@pytest.fixture
def carrier() -> Iterator[Carrier]:
    smsc = Carrier()
    smsc.start()
    yield smsc
    smsc.stop()


def seed_acme(store: Store, carrier: Carrier, callback: MoCallback) -> None:
    """acme: inbound number 85230001234, an HTTP MO endpoint, SMPP account acme1 (rx, trx;
    MOs on by default)."""
    seeded = seed_customer(store.engine, with_carrier=False, callback_url=callback.url)
    with store.engine.begin() as conn:
        route_id = conn.execute(
            select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
        ).scalar_one()
        add_carrier(conn, route_id, port=carrier.sim.port)
    bump(store.engine)
    store.add_inbound_number(NUMBER, "", "acme")
    account = Operator(store).add_smpp_account(
        "acme", "acme1", password="s3cret", route=seeded.route, binds="rx,trx"
    )
    assert account.mo  # default: on, the account can receive


@pytest.fixture(params=["all"])
def platform(
    request: pytest.FixtureRequest,
    store: Store,
    make_server: Any,
    carrier: Carrier,
    callback: MoCallback,
) -> Any:
    """Role all (one process); or ``split``: a worker (the carrier's MOs come in there) and a
    separate SMPP server, role smpp, that finds them in the store (no in-process wake-up)."""
    seed_acme(store, carrier, callback)
    if request.param == "split":
        make_server(role="worker")
        return make_server(role="smpp", smpp_port=free_port())
    return make_server(role="all", smpp_port=free_port())


Bind = Callable[..., Any]


@pytest.fixture
async def esme(platform: Any) -> AsyncIterator[Bind]:
    opened: list[EsmeLink] = []

    async def bind(on_deliver: Any, pdu: type[BindPdu] = BindTransceiver) -> EsmeLink:
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(
            lambda: EsmeLink(name="customer", on_deliver=on_deliver, response_timeout_s=10,
                             enquire_link_s=0),
            "127.0.0.1",
            platform.settings.smpp_port,
        )  # fmt: skip
        opened.append(link)
        await link.bind(pdu(sequence_number=1, system_id="acme1", password="s3cret"))
        return link

    yield bind
    for link in opened:
        link.abort()


def stored(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(tables.inbound_messages).order_by("id")).all())


async def until(predicate: Callable[[], bool], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls the database or a list)
            await asyncio.sleep(0.05)


def text_of(parts: list[DeliverSm]) -> str:
    """The text of one MO's deliver_sm (its parts joined by their UDH sequence numbers)."""
    if len(parts) == 1 and not parts[0].esm_class & 0x40:
        return decode_text(parts[0].short_message, parts[0].data_coding)
    by_seq = {}
    for p in parts:
        udh_len = p.short_message[0] + 1
        udh = p.short_message[:udh_len]
        assert udh[1:3] == b"\x00\x03" and udh[4] == len(parts)  # 8-bit reference, total
        by_seq[udh[5]] = p.short_message[udh_len:]
    assert len({p.short_message[3] for p in parts}) == 1  # one reference
    return decode_text(b"".join(by_seq[s] for s in sorted(by_seq)), parts[0].data_coding)


async def test_mos_arrive_as_deliver_sm_on_the_customer_session_not_over_http(
    store: Store,
    database_url: str,
    platform: Any,
    carrier: Carrier,
    esme: Bind,
    callback: MoCallback,
) -> None:
    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    await esme(on_deliver)
    gsm, ucs2 = "Hello €5 {ok}", "您好，请确认"
    long_gsm = "Please call me back about the appointment tomorrow at three. " * 4  # 248: 2
    long_ucs2 = "您好，我想预约明天下午三点的门诊，请回复确认。" * 4  # 92 UCS-2 units: 2 parts
    await carrier.send_mo(gsm)
    await carrier.send_mo(ucs2)
    await carrier.send_mo(long_gsm)
    assert await carrier.send_mo(long_ucs2, reference=77) == 2  # parts from the carrier too
    await until(lambda: len(received) == 6)
    await until(lambda: all(r.push_state == "done" for r in stored(store)))

    assert {(p.source_addr, p.destination_addr) for p in received} == {(HANDSET, NUMBER)}
    assert {(p.source_addr_ton, p.source_addr_npi) for p in received} == {(1, 1)}
    # MOs go out concurrently (up to the window): their order across MOs is not fixed.
    singles = sorted((p for p in received if not p.esm_class & 0x40), key=lambda p: p.data_coding)
    assert [(p.esm_class, p.data_coding, text_of([p])) for p in singles] == [
        (0, 0, gsm), (0, 8, ucs2)]  # fmt: skip
    assert singles[0].short_message == b"Hello \x1be5 \x1b(ok\x1b)"  # unpacked GSM 03.38
    parts: dict[int, list[DeliverSm]] = {}
    for p in received:
        if p.esm_class & 0x40:
            parts.setdefault(p.short_message[3], []).append(p)
    assert sorted((ps[0].data_coding, text_of(ps)) for ps in parts.values()) == [
        (0, long_gsm), (8, long_ucs2)]  # fmt: skip
    rows = stored(store)
    assert [(r.channel, r.push_state, r.attempts) for r in rows] == [("smpp", "done", 1)] * 4
    await asyncio.sleep(1.0)  # the HTTP MO pusher polls meanwhile: it finds nothing to push
    assert callback.pushes == [] and callback.refused == 0
    # Operators see the channel, and the session's count of MO deliver_sm.
    [session] = platform.platform.smpp.list_sessions()
    assert (session.inbound, session.receipts) == (6, 0)
    listed = CliRunner().invoke(
        app, ["--database-url", database_url, "inbound", "list", "--customer", "acme"]
    )
    assert listed.exit_code == 0 and listed.output.count("smpp") == 4, listed.output


@pytest.mark.parametrize("platform", ["all", "split"], indirect=True)
async def test_an_mo_waits_for_a_bind_and_one_refused_is_sent_again(
    store: Store, platform: Any, carrier: Carrier, esme: Bind, callback: MoCallback
) -> None:
    platform.platform.smpp.mo.retry_base_s = 0.2
    await carrier.send_mo("Are you open today?")
    await until(lambda: len(stored(store)) == 1)
    await asyncio.sleep(1.2)  # polls find no session that can receive it: it waits
    [row] = stored(store)
    assert (row.channel, row.push_state, row.attempts) == ("smpp", "pending", 0)

    calls: list[DeliverSm] = []

    async def refuse_first(pdu: Any) -> None:
        calls.append(pdu)
        if len(calls) == 1:
            raise RuntimeError("ESME busy")  # answered ESME_RX_T_APPN

    await esme(refuse_first, BindReceiver)
    await until(lambda: stored(store)[0].push_state == "done")
    [row] = stored(store)
    assert row.attempts == 2 and row.last_error is None
    assert [decode_text(p.short_message, p.data_coding) for p in calls] == [
        "Are you open today?"] * 2  # fmt: skip
    assert callback.pushes == []


async def test_an_account_with_mo_off_leaves_mos_to_http(
    store: Store, platform: Any, carrier: Carrier, esme: Bind, callback: MoCallback
) -> None:
    Operator(store).set_smpp_account_mo("acme1", False)
    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    await esme(on_deliver)
    await carrier.send_mo("Over HTTP please")
    await asyncio.to_thread(callback.wait_for, 1)
    assert [p["SMS_CONTENT"] for p in callback.pushes] == ["Over HTTP please"]
    await until(lambda: stored(store)[0].push_state == "done")
    [row] = stored(store)
    assert (row.channel, row.push_state) == ("http", "done")
    await asyncio.sleep(0.6)
    assert received == []
