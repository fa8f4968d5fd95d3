"""Inbound messages on real sockets: the built-in SMSC simulator (the carrier) sends MO
deliver_sm to the platform (role "all"), which stores, deduplicates and routes them by inbound
number, and pushes SMS_PUSH_MO to the customer's callback, a real HTTP server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mo_callback import MoCallback
from seed import add_carrier, bump, seed_customer
from simulator_thread import ThreadedSimulator
from sqlalchemy import select

from cloudsms.storage import tables
from cloudsms.storage.store import Store

Simulator = ThreadedSimulator


@pytest.fixture
def callback() -> Iterator[MoCallback]:
    sink = MoCallback()
    yield sink
    sink.close()


def _platform(store: Store, make_server: Any, smsc: Simulator, callback_url: str) -> Any:
    seeded = seed_customer(store.engine, with_carrier=False, callback_url=callback_url)
    with store.engine.begin() as conn:
        route_id = conn.execute(
            select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
        ).scalar_one()
        add_carrier(conn, route_id, port=smsc.sim.port)
    bump(store.engine)
    store.add_inbound_number("+85230001234", "", "acme")
    server = make_server(role="all", report_retry_base_s=0.3, report_retry_max_delay_s=0.5)
    server.auth_key = seeded.auth_key
    return server


def _stored(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(tables.inbound_messages).order_by("id")).all())


@pytest.mark.slow
def test_mo_stored_routed_pushed_once(store: Store, make_server: Any,
                                      callback: MoCallback) -> None:  # fmt: skip
    long_text = "您好，我想预约明天下午三点的门诊，请回复确认。" * 4  # 92 UCS-2 units: 2 parts
    with Simulator() as smsc:
        server = _platform(store, make_server, smsc, callback.url)
        assert smsc.send_mo("85261234567", "85230001234", "Hello €5 {ok}") == 1
        assert smsc.send_mo("85261234567", "85230001234", long_text, reference=77) == 2
        pushes = callback.wait_for(2)
        # The carrier sends both again (as after a lost deliver_sm_resp): kept once, pushed once.
        smsc.send_mo("85261234567", "85230001234", "Hello €5 {ok}")
        smsc.send_mo("85261234567", "85230001234", long_text, reference=77)
        deadline = time.monotonic() + 10
        while smsc.sim.receipts_acked < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert smsc.sim.receipts_acked == 6  # every deliver_sm answered ESME_ROK
        time.sleep(1.0)
    assert len(callback.pushes) == 2, callback.pushes
    by_text = {p["SMS_CONTENT"]: p for p in pushes}
    gsm, ucs2 = by_text["Hello €5 {ok}"], by_text[long_text]
    assert gsm["METHOD"] == "SMS_PUSH_MO" and gsm["TYPE"] == "REQUEST"
    assert len(gsm["AUTH_KEY"]) == 128
    assert (gsm["SOURCE_MSISDN"], gsm["DEST_MSISDN"], gsm["KEYWORD"], gsm["SMS_COUNT"]) == (
        "85261234567", "85230001234", "HELLO", 1)  # fmt: skip
    assert ucs2["SMS_COUNT"] == 2 and ucs2["MO_UID"] != gsm["MO_UID"]
    assert sorted(p["SERIAL"] for p in pushes) == [1, 2]
    rows = _stored(store)
    assert [(r.routed_by, r.push_state, r.parts) for r in rows] == [
        ("number", "done", 1), ("number", "done", 2)]  # fmt: skip
    with store.engine.connect() as conn:
        assert conn.execute(select(tables.inbound_parts)).all() == []

    # MO_QUERY pulls the same messages, oldest first, after a cursor.
    def query(**fields: Any) -> dict[str, Any]:
        packet = {"METHOD": "MO_QUERY", "TYPE": "REQUEST", "SERIAL": 9, "AUTH_KEY": server.auth_key,
                  "TIME": "2026-01-01 00:00:00", "VERSION": "2021-01-01", **fields}  # fmt: skip
        answer: dict[str, Any] = httpx.post(server.url, json=packet, timeout=10).json()
        return answer

    everything = query()
    assert everything["RESULT_CODE"] == 1 and everything["METHOD"] == "MO_QUERY"
    assert [m["SMS_CONTENT"] for m in everything["MO_LIST"]] == ["Hello €5 {ok}", long_text]
    assert everything["MO_LIST"][0] == {k: gsm[k] for k in everything["MO_LIST"][0]}
    after = query(SINCE_MO_UID=gsm["MO_UID"], LIMIT=10)
    assert [m["MO_UID"] for m in after["MO_LIST"]] == [ucs2["MO_UID"]]
    assert query(LIMIT=0)["RESULT_CODE"] == 0x10000001  # Invalid_parameter


@pytest.mark.slow
def test_a_callback_that_is_down_gets_the_mo_later(store: Store, make_server: Any,
                                                  callback: MoCallback) -> None:  # fmt: skip
    callback.down = True
    with Simulator() as smsc:
        _platform(store, make_server, smsc, callback.url)
        smsc.send_mo("+85261234567", "85230001234", "Are you open today?")
        deadline = time.monotonic() + 10
        while callback.refused < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert callback.refused >= 2  # tried, refused with 503, tried again
        assert _stored(store)[0].push_state == "pending"
        callback.down = False
        [push] = callback.wait_for(1)
        assert push["SMS_CONTENT"] == "Are you open today?"
        time.sleep(0.3)
    [row] = _stored(store)
    assert row.push_state == "done" and row.attempts >= 3


@pytest.mark.slow
def test_stop_from_the_handset_makes_later_sends_intercept(
    store: Store, make_server: Any, callback: MoCallback
) -> None:
    """The carrier delivers "STOP" from a handset: before the deliver_sm_resp the number is on
    the customer's opt-out list; the customer's next send to it is Intercept; START lifts it."""

    serials = iter(range(1, 10_000))

    def send_to_handset() -> dict[str, Any]:
        # A new SERIAL each time: the same bytes again would be answered from the replay row.
        packet = {
            "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": next(serials), "TIME": "now",
            "AUTH_KEY": server.auth_key, "ROUTE_ID": route, "VERSION": "2021-01-01",
            "SMS_CONTENT": "Your code is 4711.",
            "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": 852, "DEST_MSISDN": "61234567"}],
        }  # fmt: skip
        answer: dict[str, Any] = httpx.post(server.url, json=packet, timeout=10).json()
        return answer

    with Simulator() as smsc:
        server = _platform(store, make_server, smsc, callback.url)
        route = "VerifyCode_516"  # seed_customer's route
        with store.engine.connect() as conn:
            customer_id = conn.execute(
                select(tables.customers.c.id).where(tables.customers.c.name == "acme")
            ).scalar_one()
        assert send_to_handset()["RESULT_CODE"] == 1
        smsc.send_mo("85261234567", "85230001234", "stop")
        callback.wait_for(1)  # the MO is still pushed to the customer
        deadline = time.monotonic() + 10
        while not store.list_opt_outs(customer_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        [entry] = store.list_opt_outs(customer_id)
        assert (entry.number, entry.via, entry.keyword.upper()) == (
            "85261234567",
            "keyword",
            "STOP",
        )
        deadline = time.monotonic() + 10
        while send_to_handset()["RESULT_CODE"] != 0x10000006 and time.monotonic() < deadline:
            time.sleep(0.2)  # the API's configuration reloads within a second
        assert send_to_handset()["RESULT_DESC"] == "Intercept"
        smsc.send_mo("85261234567", "85230001234", "START")
        deadline = time.monotonic() + 10  # applied before the carrier's deliver_sm_resp
        while store.list_opt_outs(customer_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.list_opt_outs(customer_id) == []
        deadline = time.monotonic() + 10
        while send_to_handset()["RESULT_CODE"] != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert send_to_handset()["RESULT_CODE"] == 1
