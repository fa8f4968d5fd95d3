"""The customers' SMPP server (issue 15): submit_multi, validity_period and the receipt window.

Our own ESME link (``cloudsms.transport.esme.EsmeLink``) plays the customer against the real
platform (role api, both engines) over TCP; what is accepted is read back from the store.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from seed import Seeded, seed_customer
from sqlalchemy import select

from cloudsms.api.smpp_submit import ESME_RBLOCKED
from cloudsms.domain.packet import MAX_RECIPIENTS
from cloudsms.services.operator import Operator
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.constants import Tag
from cloudsms.smpp.encoding import split_for_submit, udh_concat
from cloudsms.smpp.pdu import (
    BindTransceiver,
    DeliverSm,
    DistributionList,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    UnsuccessSme,
)
from cloudsms.smpp.receipt import parse_receipt_text
from cloudsms.smpp.tlv import Tlv
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink
from cloudsms.workers.expiry import ExpiryWorker

Bind = Callable[..., Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def seeded(store: Store) -> Seeded:
    seeded = seed_customer(store.engine)
    op = Operator(store)
    op.add_smpp_account("acme", "acme1", password="s3cret", route=seeded.route, binds="tx,trx")
    op.add_smpp_account("acme", "slow", password="pw", route=seeded.route, throughput="4")
    op.blacklist_add("85261234000")
    return seeded


@pytest.fixture
def smpp_server(seeded: Seeded, make_server: Any) -> Any:
    return make_server(smpp_port=free_port())


async def _ignore(_pdu: Any) -> None:
    return None


@pytest.fixture
async def links(smpp_server: Any) -> AsyncIterator[Bind]:
    opened: list[EsmeLink] = []
    loop = asyncio.get_running_loop()

    async def bind(system_id: str, password: str, on_deliver: Any = _ignore) -> EsmeLink:
        _, link = await loop.create_connection(
            lambda: EsmeLink(
                name="customer", on_deliver=on_deliver, response_timeout_s=10, enquire_link_s=0
            ),
            "127.0.0.1",
            int(smpp_server.settings.smpp_port),
        )
        opened.append(link)
        await link.bind(BindTransceiver(sequence_number=1, system_id=system_id, password=password))
        return link

    yield bind
    for link in opened:
        link.abort()


async def submit_multi(
    link: EsmeLink, dests: list[SmeAddress | DistributionList], text: bytes = b"Code 1234", **f: Any
) -> Any:
    pdu = SubmitMulti(
        sequence_number=link.session.sequence.next(),
        source_addr="Acme",
        dest_addresses=tuple(dests),
        short_message=text,
        **f,
    )
    return await link.send_request(pdu)


async def submit(link: EsmeLink, dest: str, **fields: Any) -> Any:
    pdu = SubmitSm(
        sequence_number=link.session.sequence.next(),
        destination_addr=dest,
        short_message=b"Code 1234",
        source_addr="Acme",
        **fields,
    )
    return await link.send_request(pdu)


def sme(number: str) -> SmeAddress:
    return SmeAddress(1, 1, number)


def messages(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {r.dest_msisdn: r for r in conn.execute(select(tables.messages))}


def final_report(store: Store, seeded: Seeded, uid: str, state: int = 2) -> None:
    """What the dispatcher writes when the carrier's receipt makes the message final."""
    store.enqueue_report_now(
        sms_uid=uid,
        customer_id=seeded.customer_id,
        sms_state=state,
        result_desc="DELIVRD" if state == 2 else "UNDELIV",
        report_ms=store.now_ms(),
    )


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls)
            await asyncio.sleep(0.05)


# -- submit_multi ----------------------------------------------------------------------------


async def test_submit_multi_stores_each_destination_and_lists_the_refused(
    store: Store, links: Bind
) -> None:
    link = await links("acme1", "s3cret")
    long_text = ("One text to several handsets, billed per segment each. " * 4).encode()
    resp = await submit_multi(
        link,
        [
            sme("85261234567"),
            DistributionList("friends"),  # distribution lists are not supported
            sme("85261234000"),  # blacklisted: Intercept
            sme("85-2612"),  # not E.164
            sme("+85261234568"),
        ],
        b"",
        tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, long_text),),
    )
    assert resp.command_status == S.ESME_ROK
    assert resp.unsuccess_smes == (
        UnsuccessSme(0, 0, "friends", S.ESME_RINVDLNAME),
        UnsuccessSme(1, 1, "85261234000", ESME_RBLOCKED),
        UnsuccessSme(1, 1, "85-2612", S.ESME_RINVDSTADR),
    )
    rows = messages(store)
    assert sorted(rows) == ["61234567", "61234568"]
    first, second = rows["61234567"], rows["61234568"]
    # message_id is the first recipient's SMS_UID; the second's receipts carry it too
    assert first.sms_uid == resp.message_id and first.smpp_message_id is None
    assert second.sms_uid != resp.message_id and second.smpp_message_id == resp.message_id
    for row in (first, second):  # one message each, billed per segment
        assert (row.segments, row.fee_micros, row.state) == (2, 100_000, "accepted")
        assert row.content == long_text.decode() and row.sender == "Acme"


async def test_submit_multi_with_no_acceptable_destination_is_refused_whole(
    store: Store, links: Bind
) -> None:
    link = await links("acme1", "s3cret")
    resp = await submit_multi(link, [sme("85261234000"), DistributionList("all")])
    assert (resp.command_status, resp.message_id, resp.unsuccess_smes) == (ESME_RBLOCKED, "", ())
    resp = await submit_multi(link, [sme("85-2612")])
    assert resp.command_status == S.ESME_RINVDSTADR
    too_many = [sme(f"852612{n:05d}") for n in range(MAX_RECIPIENTS + 1)]
    assert (await submit_multi(link, too_many)).command_status == S.ESME_RINVNUMDESTS
    assert messages(store) == {}


LONG_UCS2 = "多个收件人的长短信，分段发送，每段按收件人计费。" * 7  # 3 UCS-2 segments


def multi_parts(
    link: EsmeLink, dests: list[SmeAddress | DistributionList], parts: list[dict[str, Any]]
) -> Any:
    """Every part of a submit_multi written before any answer is awaited (a windowed ESME)."""
    return asyncio.gather(
        *(
            link.send_request(
                SubmitMulti(
                    sequence_number=link.session.sequence.next(),
                    source_addr="Acme",
                    dest_addresses=tuple(dests),
                    **fields,
                )
            )
            for fields in parts
        )
    )


def sar(ref: int, seq: int, total: int) -> tuple[Tlv, ...]:
    return (
        Tlv(Tag.SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
        Tlv(Tag.SAR_TOTAL_SEGMENTS, bytes((total,))),
        Tlv(Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))),
    )


@pytest.mark.parametrize("kind", ["udh8", "udh16", "sar"])
async def test_submit_multi_in_parts_is_one_packet_answered_after_its_commit(
    store: Store, links: Bind, kind: str
) -> None:
    link = await links("acme1", "s3cret")
    segments = split_for_submit(LONG_UCS2, "ucs2", sixteen_bit=kind == "udh16")
    assert len(segments) == 3
    if kind == "sar":
        parts = [
            {"data_coding": 8, "short_message": s, "tlvs": sar(9, i + 1, 3)}
            for i, s in enumerate(segments)
        ]
    else:
        parts = [
            {
                "data_coding": 8,
                "esm_class": 0x40,
                "short_message": udh_concat(9, 3, i + 1, kind == "udh16") + s,
            }
            for i, s in enumerate(segments)
        ]
    dests = [sme("85261234567"), sme("85261234000"), sme("85261234568")]  # the 2nd blacklisted
    resps = await multi_parts(link, dests, parts)
    assert [r.command_status for r in resps] == [0, 0, 0]
    assert len({r.message_id for r in resps}) == 1 and resps[0].message_id
    for resp in resps:  # every part names the refused destination
        assert resp.unsuccess_smes == (UnsuccessSme(1, 1, "85261234000", ESME_RBLOCKED),)
    rows = messages(store)
    assert sorted(rows) == ["61234567", "61234568"]
    assert rows["61234567"].sms_uid == resps[0].message_id
    assert rows["61234568"].smpp_message_id == resps[0].message_id
    for row in rows.values():  # one message each, billed per segment
        assert (row.segments, row.fee_micros, row.content) == (3, 150_000, LONG_UCS2)


async def test_submit_multi_parts_with_different_lists_never_complete(
    store: Store, smpp_server: Any, links: Bind
) -> None:
    link = await links("acme1", "s3cret")
    smpp_server.platform.smpp.concat.timeout_s = 0.3
    one, two = split_for_submit(LONG_UCS2[:100], "ucs2")
    a, b = sme("85261234567"), sme("85261234568")
    # Part 1 to [a, b] and part 2 to [b, a]: two messages, each missing a part.
    resps = await asyncio.gather(
        multi_parts(link, [a, b], [{"data_coding": 8, "short_message": one, "tlvs": sar(5, 1, 2)}]),
        multi_parts(link, [b, a], [{"data_coding": 8, "short_message": two, "tlvs": sar(5, 2, 2)}]),
    )
    for (resp,) in resps:  # refused when the 60 s (here 0.3 s) are up, nothing kept
        assert (resp.command_status, resp.message_id) == (S.ESME_RSUBMITFAIL, "")
    assert messages(store) == {}


async def test_submit_multi_is_throttled_in_segments_times_recipients(links: Bind) -> None:
    link = await links("slow", "pw")  # 4 segments per second
    three = [sme("85261234567"), sme("85261234568"), sme("85261234569")]
    assert (await submit_multi(link, three)).command_status == S.ESME_ROK  # 3 of 4
    assert (await submit_multi(link, three[:2])).command_status == S.ESME_RTHROTTLED  # 2 > 1
    assert (await submit(link, "85261234567")).command_status == S.ESME_ROK  # the last one


async def test_every_recipient_receipt_carries_the_submit_multi_message_id(
    store: Store, seeded: Seeded, links: Bind
) -> None:
    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    link = await links("acme1", "s3cret", on_deliver)
    resp = await submit_multi(link, [sme("85261234567"), sme("85261234568")], registered_delivery=1)
    assert resp.command_status == S.ESME_ROK and resp.unsuccess_smes == ()
    rows = messages(store)
    final_report(store, seeded, rows["61234567"].sms_uid)
    final_report(store, seeded, rows["61234568"].sms_uid, state=5)
    await until(lambda: len(received) == 2)
    by_handset = {r.source_addr: r for r in received}
    assert sorted(by_handset) == ["85261234567", "85261234568"]
    for handset, state, stat in (("85261234567", 2, "DELIVRD"), ("85261234568", 5, "UNDELIV")):
        receipt = by_handset[handset]
        assert receipt.receipted_message_id == resp.message_id
        assert receipt.message_state == state
        parsed = parse_receipt_text(receipt.short_message.decode("ascii"))
        assert parsed is not None
        assert (parsed.message_id, parsed.state) == (resp.message_id, stat)


# -- validity_period -------------------------------------------------------------------------


async def test_validity_period_becomes_the_message_deadline(store: Store, links: Bind) -> None:
    link = await links("acme1", "s3cret")
    before = int(time.time() * 1000)  # the store keeps whole milliseconds
    relative = await submit(link, "85261234567", validity_period="000000003000000R")  # 30 min
    absolute = await submit(link, "85261234568", validity_period="991231235959000+")
    plain = await submit(link, "85261234569")
    assert [r.command_status for r in (relative, absolute, plain)] == [0, 0, 0]
    rows = messages(store)
    assert 0 <= rows["61234567"].expires_ms - before - 1_800_000 < 5_000
    assert rows["61234568"].expires_ms == 4_102_444_799_000  # 2099-12-31 23:59:59 UTC
    assert rows["61234569"].expires_ms is None


async def test_a_message_not_sent_by_its_validity_is_expired_and_the_receipt_says_so(
    store: Store, smpp_server: Any, links: Bind
) -> None:
    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    link = await links("acme1", "s3cret", on_deliver)
    resp = await submit(
        link, "85261234567", validity_period="000000000001000R", registered_delivery=1
    )
    assert resp.command_status == S.ESME_ROK
    await asyncio.sleep(1.1)
    # Past its validity, no dispatcher may take it any more ...
    assert store.claim_due(store.now_ms(), 10) == []
    # ... and the platform's expiry job (25 h after submission otherwise) ends it.
    expiry = ExpiryWorker(store, expire_after_s=25 * 3600)
    assert await expiry.run_once() == 1
    assert messages(store)["61234567"].state == "expired"
    await until(lambda: len(received) == 1)
    receipt = received[0]
    assert receipt.receipted_message_id == resp.message_id and receipt.message_state == 3
    parsed = parse_receipt_text(receipt.short_message.decode("ascii"))
    assert parsed is not None and parsed.state == "EXPIRED"


# -- the receipt window ----------------------------------------------------------------------


async def test_a_session_gets_a_window_of_receipts_at_once(
    store: Store, seeded: Seeded, smpp_server: Any, links: Bind
) -> None:
    """Receipts in flight per session follow the receipt window (``smpp_receipt_window``, 100
    by default), not a fixed 10: an ESME slow to answer still gets them at its window's rate."""
    release = asyncio.Event()
    waiting: list[DeliverSm] = []

    async def slow(pdu: Any) -> None:
        waiting.append(pdu)
        await release.wait()

    link = await links("acme1", "s3cret", slow)
    uids = [
        (await submit(link, f"852612340{n:02d}", registered_delivery=1)).message_id
        for n in range(10, 50)
    ]
    for uid in uids:
        final_report(store, seeded, uid)
    smpp_server.platform.smpp.receipts.wake()
    await until(lambda: len(waiting) == 40)  # all 40 unanswered at once
    release.set()
    await until(lambda: store.count_messages() == 40 and _done(store) == 40)


def _done(store: Store) -> int:
    with store.engine.connect() as conn:
        rows = conn.execute(select(tables.report_outbox.c.done_ms)).all()
    return sum(1 for (done,) in rows if done is not None)
