"""What a customer is told about a message is one thing, pushed or polled, in every final state;
and a message of which no valid PDU can be made ends at once instead of being retried for hours.

Real sockets end to end: UIP packets in over HTTP, SMPP out to two simulators (one answers
receipts by number, one refuses every submit), SMS_PUSH_REPORT to a callback server, DR_QUERY
over HTTP. Two messages of the ten are written with the store's own accept operation, as an
older version (or a configuration changed since) could have left them: one for a route that no
longer exists, one no SMPP PDU can carry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import orjson
import pytest
from seed import Seeded, add_carrier, bump, seed_customer
from sqlalchemy import select
from test_end_to_end import CallbackSink, SimulatorThread, send

from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.status import FINAL_STATES, MessageState
from cloudsms.simulator.behaviours import ErrorOnSubmit
from cloudsms.simulator.receipts import ReceiptPolicy, Rule
from cloudsms.smpp.constants import CommandStatus
from cloudsms.storage import tables
from cloudsms.storage.store import Store

UIDS = UidGenerator()
PRICE = 50_000  # 0.05 HKD for 852 (seed_customer)
#: Destination (calling code first) → what the first simulator answers for it.
RULES = [
    Rule("undeliverable", suffix="3"),
    Rule("expired", suffix="4"),
    Rule("rejected", suffix="5"),
    Rule("deleted", suffix="6"),
    Rule("unknown", suffix="7"),
]


def query(client: httpx.Client, url: str, key: str, uids: list[str]) -> dict[str, Any]:
    """DR_QUERY over HTTP: SMS_UID → its SMS_RESULT_LIST entry."""
    body = {
        "METHOD": "DR_QUERY", "TYPE": "REQUEST", "SERIAL": 9, "TIME": "t", "AUTH_KEY": key,
        "VERSION": "2021-01-01", "SMS_UID_LIST": uids,
    }  # fmt: skip
    answer = orjson.loads(client.post(url, content=orjson.dumps(body)).content)
    assert answer["RESULT_CODE"] == 1, answer
    return {entry["SMS_UID"]: entry for entry in answer["SMS_RESULT_LIST"]}


def store_write(store: Store, seeded: Seeded, **fields: Any) -> str:
    """A charged ACCEPTED message stored by the accept path's own store operation."""
    now = time.time_ns() // 1_000_000
    values: dict[str, Any] = {
        "sms_uid": UIDS.next_uid(), "customer_id": seeded.customer_id, "serial": 1,
        "country_code": 852, "dest_msisdn": "67000011", "route_name": seeded.route,
        "sender": "CloudSMS", "content": "hi", "encoding": "gsm7", "segments": 1, "priority": 0,
        "send_at_ms": now, "customer_body": None, "state": MessageState.ACCEPTED,
        "result_desc": None, "detail": None, "fee_micros": PRICE, "currency": "HKD",
        "created_ms": now, **fields,
    }  # fmt: skip
    message = NewMessage(**values)
    write = PacketWrite(
        customer_id=seeded.customer_id, packet_key=None, messages=(message,), answer=b"{}",
        created_ms=now,
    )  # fmt: skip
    store.accept_packets([write], replay_window_ms=0)
    return message.sms_uid


def platform(store: Store, sink: CallbackSink, *ports: int) -> Seeded:
    """A customer whose route sends 85269… to the second SMSC and everything else to the first."""
    seeded = seed_customer(store.engine, with_carrier=False, callback_url=sink.url)
    with store.engine.begin() as conn:
        route_id = conn.execute(
            select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
        ).scalar_one()
        add_carrier(conn, route_id, port=ports[0])
        if len(ports) > 1:
            add_carrier(conn, route_id, name="carrier-2", port=ports[1], prefix="85269")
    bump(store.engine)
    return seeded


@pytest.mark.slow
def test_push_and_dr_query_agree_in_every_final_state(store: Store, make_server: Any) -> None:
    refusing = ErrorOnSubmit(CommandStatus.ESME_RINVDSTADR)
    with (
        CallbackSink() as sink,
        SimulatorThread(accounts={"cloudsms": "secret"}, receipts=ReceiptPolicy(rules=RULES))
        as smsc,
        SimulatorThread(accounts={"cloudsms": "secret"}, behaviour=refusing) as refuser,
    ):  # fmt: skip
        seeded = platform(store, sink, smsc.sim.port, refuser.sim.port)
        server = make_server(role="all", report_expire_after_s=3.0, report_retry_base_s=0.2)
        numbers = ["852-67000011", "852-67000013", "852-67000014", "852-67000015",
                   "852-67000016", "852-67000017", "852-69000011", "65-71234567"]  # fmt: skip
        with httpx.Client(timeout=10) as client:
            sent = send(client, server.url, seeded.auth_key, seeded.route, 1, numbers, "code 1")
            assert sent["RESULT_CODE"] == 1, sent
            uids = [d["SMS_UID"] for d in sent["DETAIL_LIST"]]
            uids.append(store_write(store, seeded, route_name="GONE"))  # no carrier any more
            uids.append(store_write(store, seeded, sender="S" * 32))  # no PDU can carry it
            pushed = {r["SMS_UID"]: r for r in sink.wait_for(len(uids), timeout=40)}
            assert set(pushed) == set(uids), sorted(pushed)
            polled = query(client, server.url, seeded.auth_key, uids)

    told = {}
    for uid in uids:
        report, entry = pushed[uid], polled[uid]
        [result] = report["SMS_RESULT_LIST"]
        push = (result["SMS_STATE"], result["RESULT_DESC"], report["REPORT_TIME"],
                report["FEE"], report["SMS_COUNT"], report["CURRENCY"],
                result["COUNTRY_CODE"], result["DEST_MSISDN"])  # fmt: skip
        poll = (entry["SMS_STATE"], entry["STATE_DESC"], entry["REPORT_TIME"],
                entry["FEE"], entry["SMS_COUNT"], entry["CURRENCY"],
                entry["COUNTRY_CODE"], entry["DEST_MSISDN"])  # fmt: skip
        assert push == poll, (uid, push, poll)
        told[uid] = push[:2]
    assert [told[uid] for uid in uids] == [
        (2, "DELIVERED"), (5, "UNDELIVERABLE"), (3, "EXPIRED"), (8, "REJECTED"),
        (4, "DELETED"), (7, "UNKNOWN"),
        (5, "UNDELIVERABLE"),  # FAILED: the carrier refused the submit
        (8, "LOCAL_REJECTED"),  # at the API: invalid Singapore number
        (8, "LOCAL_REJECTED"),  # at dispatch: the route is gone
        (5, "UNDELIVERABLE"),  # FAILED: a deterministic local error
    ]  # fmt: skip
    states = set()
    for uid in uids:
        message = store.get_message(uid)
        assert message is not None
        states.add(message.state)
    assert states == FINAL_STATES  # every final state of the machine was compared


@pytest.mark.slow
def test_a_message_no_pdu_can_carry_fails_at_once_refunded_and_reported(
    store: Store, make_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender over SMPP's 20 characters, a number over its 20 digits, a text its stored
    encoding cannot carry: each fails at its first claim with one warning line — FAILED, fee
    refunded, report pushed — and is never claimed again."""
    caplog.set_level(logging.INFO, logger="cloudsms.dispatch")
    with CallbackSink() as sink, SimulatorThread(accounts={"cloudsms": "secret"}) as smsc:
        seeded = platform(store, sink, smsc.sim.port)
        balance = store.customer_balance(seeded.customer_id)
        make_server(role="all", report_retry_base_s=0.2)
        bad = [
            store_write(store, seeded, sender="A" * 32),
            store_write(store, seeded, dest_msisdn="6700001100000000000000"),
            store_write(store, seeded, content="验证码 1234"),  # stored as GSM 7-bit
        ]
        good = store_write(store, seeded)
        pushed = {r["SMS_UID"]: r for r in sink.wait_for(4, timeout=20)}
        assert set(pushed) == {*bad, good}
        time.sleep(2.5)  # a retry would come after 1 s, then 2 s
        assert [m.destination_addr for m in smsc.sim.received] == ["85267000011"]
    for uid in bad:
        message = store.get_message(uid)
        assert message is not None
        assert (message.state, message.attempts, message.fee_micros) == (MessageState.FAILED, 1, 0)
        assert message.detail is not None and message.detail.startswith("cannot be sent: ")
        [result] = pushed[uid]["SMS_RESULT_LIST"]
        assert (result["SMS_STATE"], pushed[uid]["FEE"]) == (5, "0.00")
        lines = [r for r in caplog.records if uid in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert store.customer_balance(seeded.customer_id) == balance - 4 * PRICE + 3 * PRICE
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
