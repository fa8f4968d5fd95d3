"""Receipts and long messages between SmppClient and the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest
from transport_helpers import ClientFactory, Inbox, SimFactory, config, eventually, submit_pdu

from cloudsms.simulator import ReceiptPolicy, Rule
from cloudsms.smpp.constants import CommandStatus, EsmClass, Tag
from cloudsms.smpp.encoding import split_for_submit, udh_concat
from cloudsms.smpp.pdu import DataSm, DeliverSm, SubmitSm
from cloudsms.smpp.receipt import normalise_message_id, receipt_from_pdu
from cloudsms.smpp.tlv import Tlv

RULES = [
    Rule("delivered", suffix="1"),
    Rule("undeliverable", suffix="2"),
    Rule("rejected", suffix="3"),
    Rule("expired", suffix="4"),
]
LONG_UCS2 = "短信平台测试：这是一条很长的中文消息，用来检查三段拼接是否正确。" * 5


async def test_receipt_per_outcome_and_none_for_expired(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(receipts=ReceiptPolicy(rules=RULES))
    inbox = Inbox()
    client = await make_client(config(sim.port), inbox)
    ids = {}
    for suffix in "1234":
        resp = await client.submit(submit_pdu("8526123456" + suffix, registered_delivery=1))
        ids[suffix] = resp.message_id
    await inbox.wait_for(3)
    await asyncio.sleep(0.3)  # an expired message never gets a receipt
    assert len(inbox.pdus) == 3
    receipts = {r.message_id: r for r in map(receipt_from_pdu, inbox.pdus) if r is not None}
    assert {rid: r.state for rid, r in receipts.items()} == {
        ids["1"]: "DELIVRD",
        ids["2"]: "UNDELIV",
        ids["3"]: "REJECTD",
    }
    for pdu in inbox.pdus:
        assert pdu.esm_class & EsmClass.MESSAGE_TYPE_MASK == EsmClass.DELIVERY_RECEIPT
        assert pdu.short_message.startswith(b"id:")  # Appendix B text as well as the TLVs
        assert pdu.destination_addr == "CloudSMS"
    assert sim.receipts_expired == 1 and sim.receipts_acked == 3


async def test_no_receipt_unless_requested(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    inbox = Inbox()
    client = await make_client(config(sim.port), inbox)
    await client.submit(submit_pdu(registered_delivery=0))
    await client.submit(submit_pdu(registered_delivery=2))  # failures only; this one succeeds
    await asyncio.sleep(0.3)
    assert inbox.pdus == [] and sim.receipts_sent == 0


async def test_weighted_outcomes_are_seeded(make_sim: SimFactory, make_client: ClientFactory):
    policy = ReceiptPolicy(delivered=0.5, undeliverable=0.3, rejected=0.2)
    outcomes = []
    for _ in range(2):
        sim = await make_sim(receipts=policy, seed=42)
        client = await make_client(config(sim.port), Inbox())
        for _ in range(30):
            await client.submit(submit_pdu(registered_delivery=1))
        outcomes.append([d.outcome for d in sim.deliveries])
    assert outcomes[0] == outcomes[1]
    assert {"delivered", "undeliverable", "rejected"} == set(outcomes[0])


async def test_receipts_on_the_rx_link_in_tx_rx_mode(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim()
    inbox = Inbox()
    client = await make_client(config(sim.port, bind_mode="tx_rx"), inbox)
    assert sorted(c.bind_kind or "" for c in sim.connections) == ["rx", "tx"]
    resp = await client.submit(submit_pdu(registered_delivery=1))
    await inbox.wait_for(1)
    receipt = receipt_from_pdu(inbox.pdus[0])
    assert receipt is not None and receipt.message_id == resp.message_id
    assert [d.via for d in sim.deliveries] == ["rx"]


async def test_receipts_wait_for_a_receiver(make_sim: SimFactory, make_client: ClientFactory):
    """Store and forward: a receipt made while no RX link is bound goes out once one binds."""
    sim = await make_sim()
    tx_only = await make_client(
        config(sim.port, bind_mode="tx_rx"), Inbox(), reconnect_initial_s=0.5
    )
    rx_conn = next(c for c in sim.connections if c.bind_kind == "rx")
    rx_conn.abort()
    await eventually(lambda: len(sim.connections) == 1)
    await tx_only.submit(submit_pdu(registered_delivery=1))
    await asyncio.sleep(0.05)
    assert sim.receipts_sent == 0 and sim.stats()["receipts_waiting"] == 1
    await eventually(lambda: sim.receipts_acked == 1)  # the client re-bound its receiver


async def test_deliver_sm_resp_only_after_on_deliver_returns(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim()
    returned_at: list[float] = []

    async def slow_store(pdu: DeliverSm | DataSm) -> None:
        await asyncio.sleep(0.3)
        returned_at.append(time.monotonic())

    client = await make_client(config(sim.port), slow_store)
    # Submits keep flowing while the callback is busy (it runs as its own task).
    await client.submit(submit_pdu(registered_delivery=1))
    start = time.monotonic()
    for _ in range(5):
        assert (await client.submit(submit_pdu())).command_status == 0
    assert time.monotonic() - start < 0.25
    await eventually(lambda: sim.receipts_acked == 1)
    record = sim.deliveries[0]
    assert record.sent_at is not None and record.answered_at is not None
    assert record.answered_at >= returned_at[0] >= record.sent_at + 0.29


async def test_deliver_window_bounds_unanswered_receipts(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(deliver_window=3)
    release = asyncio.Event()
    inbox = Inbox()

    async def held(pdu: DeliverSm | DataSm) -> None:
        await inbox(pdu)
        await release.wait()  # no deliver_sm_resp until released

    client = await make_client(config(sim.port), held)
    for _ in range(8):
        await client.submit(submit_pdu(registered_delivery=1))
    await inbox.wait_for(3)
    await asyncio.sleep(0.2)
    assert len(inbox.pdus) == 3 and sim.stats()["receipts_waiting"] == 5
    release.set()
    await inbox.wait_for(8)
    await eventually(lambda: sim.receipts_acked == 8)


async def test_on_deliver_failure_answers_rx_t_appn_and_is_redelivered(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(redeliver_after_s=0.2)
    calls: list[str] = []

    async def flaky(pdu: DeliverSm | DataSm) -> None:
        calls.append(pdu.receipted_message_id or "")
        if len(calls) == 1:
            raise RuntimeError("database is down")

    client = await make_client(config(sim.port), flaky)
    resp = await client.submit(submit_pdu(registered_delivery=1))
    await eventually(lambda: sim.receipts_acked == 1)
    assert sim.deliveries[0].statuses == [CommandStatus.ESME_RX_T_APPN, 0]
    assert calls == [resp.message_id, resp.message_id]
    assert client.stats().deliver_errors == 1


async def test_a_future_from_on_deliver_is_answered_when_it_is_done(
    make_sim: SimFactory, make_client: ClientFactory
):
    # The dispatcher's receipts: on_deliver returns the recorder's future (no task per
    # receipt); the deliver_sm is answered only once it is done, and an error if it failed.
    sim = await make_sim(redeliver_after_s=0.2)
    futures: list[asyncio.Future[None]] = []

    def held(pdu: DeliverSm | DataSm) -> asyncio.Future[None]:
        futures.append(asyncio.get_running_loop().create_future())
        return futures[-1]

    client = await make_client(config(sim.port), held)
    await client.submit(submit_pdu(registered_delivery=1))
    await eventually(lambda: len(futures) == 1)
    await asyncio.sleep(0.1)
    assert sim.deliveries[0].statuses == []  # not answered while the future is pending
    futures[0].set_exception(RuntimeError("database is down"))
    await eventually(lambda: len(futures) == 2)  # answered ESME_RX_T_APPN, so redelivered
    futures[1].set_result(None)
    await eventually(lambda: sim.receipts_acked == 1)
    assert sim.deliveries[0].statuses == [CommandStatus.ESME_RX_T_APPN, 0]
    assert client.stats().deliver_errors == 1


async def test_id_formats_normalise_to_the_same_key(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(id_format="hex", receipt_id_format="decimal")
    inbox = Inbox()
    client = await make_client(config(sim.port), inbox)
    resp = await client.submit(submit_pdu(registered_delivery=1))
    await inbox.wait_for(1)
    receipt = receipt_from_pdu(inbox.pdus[0])
    assert receipt is not None and receipt.message_id != resp.message_id
    assert receipt.message_id.isdigit()
    assert normalise_message_id(resp.message_id, "hex_to_decimal") == normalise_message_id(
        receipt.message_id, "hex_to_decimal", source="receipt"
    )


def _long_submits(text: str, mode: str) -> list[SubmitSm]:
    common = {"registered_delivery": 1, "data_coding": 8}
    if mode == "payload":
        payload = text.encode("utf-16-be")
        return [submit_pdu(tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, payload),), **common)]
    parts = split_for_submit(text, "ucs2", sixteen_bit=mode == "udh16")
    pdus = []
    for i, part in enumerate(parts, 1):
        if mode == "sar":
            sar = (
                Tlv.uint16(Tag.SAR_MSG_REF_NUM, 0x1234),
                Tlv.uint8(Tag.SAR_TOTAL_SEGMENTS, len(parts)),
                Tlv.uint8(Tag.SAR_SEGMENT_SEQNUM, i),
            )
            pdus.append(submit_pdu(text=part, tlvs=sar, **common))
        else:
            udh = udh_concat(0x1234 if mode == "udh16" else 0x42, len(parts), i, mode == "udh16")
            pdus.append(submit_pdu(text=udh + part, esm_class=EsmClass.UDHI, **common))
    return pdus


@pytest.mark.parametrize("mode", ["udh8", "udh16", "sar", "payload"])
async def test_long_ucs2_message_is_reassembled(
    make_sim: SimFactory, make_client: ClientFactory, mode: str
):
    sim = await make_sim()
    inbox = Inbox()
    client = await make_client(config(sim.port), inbox)
    pdus = _long_submits(LONG_UCS2, mode)
    assert len(pdus) == (1 if mode == "payload" else 3)
    resps = await asyncio.gather(*(client.submit(p) for p in reversed(pdus)))  # any order
    await inbox.wait_for(len(pdus))
    assert len(sim.received) == 1
    message = sim.received[0]
    assert message.text == LONG_UCS2
    assert message.segments == len(pdus) and message.concatenation == mode
    assert message.data_coding == 8
    assert sorted(message.message_ids) == sorted(r.message_id for r in resps)
    receipt_ids = {r.message_id for r in map(receipt_from_pdu, inbox.pdus) if r is not None}
    assert receipt_ids == {r.message_id for r in resps}  # one receipt per segment
