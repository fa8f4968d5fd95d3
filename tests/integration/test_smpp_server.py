"""The customers' SMPP server under `cloudsms serve` (issue 15): binds and submit_sm over TCP.

Our own ESME link (``cloudsms.transport.esme.EsmeLink``) plays the customer against the real
platform (role api, both engines); what is accepted is read back from the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from seed import Seeded, seed_customer
from sqlalchemy import select

from cloudsms.api.smpp_submit import ESME_RBLOCKED, ESME_RUNPRICED
from cloudsms.services.operator import Operator
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.constants import Tag
from cloudsms.smpp.encoding import split_for_submit, udh_concat
from cloudsms.smpp.pdu import BindReceiver, BindTransceiver, BindTransmitter, DeliverSm, SubmitSm
from cloudsms.smpp.receipt import parse_receipt_text
from cloudsms.smpp.tlv import Tlv
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.errors import BindFailed
from cloudsms.transport.esme import BindPdu, EsmeLink

Bind = Callable[..., Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def seeded(store: Store) -> Seeded:
    seeded = seed_customer(store.engine)
    op = Operator(store)
    op.add_smpp_account(
        "acme", "acme1", password="s3cret", route=seeded.route, binds="tx,trx", max_sessions="2"
    )
    op.add_smpp_account(
        "acme", "slow", password="pw", route=seeded.route, throughput="2", max_sessions="1"
    )
    op.blacklist_add("85261234000")
    op.opt_out_add("acme", "85261234001")
    return seeded


@pytest.fixture
def smpp_server(seeded: Seeded, make_server: Any) -> Any:
    return make_server(smpp_port=free_port())


@pytest.fixture
def smpp_port(smpp_server: Any) -> int:
    return int(smpp_server.settings.smpp_port)


async def _ignore(_pdu: Any) -> None:
    return None


async def connect(
    port: int, tls: ssl.SSLContext | None = None, on_deliver: Any = _ignore
) -> EsmeLink:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(
        lambda: EsmeLink(
            name="customer", on_deliver=on_deliver, response_timeout_s=10, enquire_link_s=0
        ),
        "127.0.0.1",
        port,
        ssl=tls,
        server_hostname="127.0.0.1" if tls else None,
    )
    return link


@pytest.fixture
async def links(smpp_port: int) -> AsyncIterator[Bind]:
    opened: list[EsmeLink] = []

    async def bind(
        system_id: str,
        password: str,
        pdu: type[BindPdu] = BindTransceiver,
        on_deliver: Any = _ignore,
    ) -> EsmeLink:
        link = await connect(smpp_port, on_deliver=on_deliver)
        opened.append(link)
        await link.bind(pdu(sequence_number=1, system_id=system_id, password=password))
        return link

    yield bind
    for link in opened:
        link.abort()


async def refused_bind(bind: Bind, *args: Any) -> int:
    with pytest.raises(BindFailed) as failed:
        await bind(*args)
    return failed.value.command_status


async def submit(link: EsmeLink, dest: str, text: bytes = b"Code 1234", **fields: Any) -> Any:
    pdu = SubmitSm(
        sequence_number=link.session.sequence.next(),
        destination_addr=dest,
        short_message=text,
        source_addr="Acme",
        **fields,
    )
    return await link.send_request(pdu)


async def test_binds_are_checked(links: Bind) -> None:
    assert await refused_bind(links, "nobody", "x") == S.ESME_RINVSYSID
    assert await refused_bind(links, "acme1", "wrong") == S.ESME_RINVPASWD
    # tx and trx only
    assert await refused_bind(links, "acme1", "s3cret", BindReceiver) == S.ESME_RBINDFAIL
    await links("acme1", "s3cret", BindTransmitter)
    await links("acme1", "s3cret")
    # two sessions at most
    assert await refused_bind(links, "acme1", "s3cret") == S.ESME_RBINDFAIL


async def test_bind_from_outside_the_whitelist_is_refused(
    store: Store, seeded: Seeded, links: Bind
) -> None:
    Operator(store).add_network("acme", "10.9.8.7")
    await asyncio.sleep(0.3)  # the server reloads the configuration
    assert await refused_bind(links, "acme1", "s3cret") == S.ESME_RBINDFAIL
    Operator(store).add_network("acme", "127.0.0.1")
    await asyncio.sleep(0.3)
    await links("acme1", "s3cret")


async def test_submit_sm_is_accepted_durably_with_the_sms_uid(
    store: Store, seeded: Seeded, links: Bind
) -> None:
    link = await links("acme1", "s3cret")
    resp = await submit(link, "85261234567")
    assert resp.command_status == 0 and resp.message_id
    long_text = ("Long text in one message_payload, billed per segment. " * 4).encode()
    resp_long = await submit(link, "+85261234568", b"", tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, long_text),))
    assert resp_long.command_status == 0
    with store.engine.connect() as conn:
        rows = {
            r.sms_uid: r
            for r in conn.execute(
                select(tables.messages).where(tables.messages.c.customer_id == seeded.customer_id)
            )
        }
    short, long = rows[resp.message_id], rows[resp_long.message_id]
    assert (short.country_code, short.dest_msisdn, short.sender) == (852, "61234567", "Acme")
    assert (short.route_name, short.content, short.segments) == (seeded.route, "Code 1234", 1)
    assert short.fee_micros == 50_000 and short.state == "accepted"
    assert long.segments == 2 and long.fee_micros == 100_000 and long.dest_msisdn == "61234568"


@pytest.mark.parametrize(
    ("dest", "fields", "status"),
    [
        ("85261234000", {}, ESME_RBLOCKED),  # blacklisted: Intercept
        ("85261234001", {}, ESME_RBLOCKED),  # on acme's opt-out list: Intercept
        ("4479460000001", {}, ESME_RUNPRICED),  # no price for +44
        ("85-2612", {}, S.ESME_RINVDSTADR),
        ("8612345", {}, S.ESME_RINVDSTADR),  # mainland China mobiles have 11 digits
        ("85261234567", {"esm_class": 0x40}, S.ESME_RINVESMCLASS),  # UDH parts
        ("85261234567", {"validity_period": "nonsense"}, S.ESME_RINVEXPIRY),
        ("85261234567", {"validity_period": "200101000000000+"}, S.ESME_RINVEXPIRY),  # past
        (  # the message would end before it is sent
            "85261234567",
            {"schedule_delivery_time": "000000010000000R", "validity_period": "000000003000000R"},
            S.ESME_RINVEXPIRY,
        ),
        ("85261234567", {"schedule_delivery_time": "nonsense"}, S.ESME_RINVSCHED),
        ("85261234567", {"schedule_delivery_time": "001000000000000R"}, S.ESME_RINVSCHED),
        ("85261234567", {"data_coding": 4}, S.ESME_RSUBMITFAIL),
    ],
)
async def test_refusals_have_their_command_status(
    store: Store, links: Bind, dest: str, fields: dict[str, Any], status: int
) -> None:
    link = await links("acme1", "s3cret")
    resp = await submit(link, dest, **fields)
    assert resp.command_status == status and resp.message_id == ""
    with store.engine.connect() as conn:
        assert conn.execute(select(tables.messages)).first() is None
    # the session stays usable
    assert (await submit(link, "85261234567")).command_status == 0


async def test_scheduled_message_keeps_its_time(store: Store, links: Bind) -> None:
    link = await links("acme1", "s3cret")
    resp = await submit(link, "85261234567", schedule_delivery_time="000000010000000R")
    assert resp.command_status == 0
    with store.engine.connect() as conn:
        row = conn.execute(select(tables.messages)).one()
    assert 3_500_000 < row.send_at_ms - row.created_ms <= 3_600_000


async def test_throughput_is_counted_in_segments(links: Bind) -> None:
    link = await links("slow", "pw")
    first = await submit(link, "85261234567", b"x" * 200)  # two segments: the whole second
    assert first.command_status == 0
    second = await submit(link, "85261234567")
    assert second.command_status == S.ESME_RTHROTTLED
    await asyncio.sleep(0.6)
    assert (await submit(link, "85261234567")).command_status == 0


async def test_disabling_an_account_closes_its_sessions(store: Store, links: Bind) -> None:
    link = await links("acme1", "s3cret")
    Operator(store).set_smpp_account_enabled("acme1", False)
    await asyncio.wait_for(asyncio.shield(link.closed), 5)
    assert await refused_bind(links, "acme1", "s3cret") == S.ESME_RINVSYSID
    Operator(store).set_smpp_account_enabled("acme1", True)
    await asyncio.sleep(0.3)
    await links("acme1", "s3cret")


async def test_smpp_over_tls_with_a_client_certificate(
    store: Store, seeded: Seeded, make_server: Any, tmp_path: Path
) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    good = client_ca.issue_cert("customer@example.com")
    good.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "good.pem"))
    der = ssl.PEM_cert_to_DER_cert(good.cert_chain_pems[0].bytes().decode())
    Operator(store).set_client_cert("acme", hashlib.sha256(der).hexdigest())
    plain, tls_port = free_port(), free_port()
    make_server(
        smpp_port=plain,
        smpp_tls_port=tls_port,
        tls_cert=str(tmp_path / "server.pem"),
        tls_key=str(tmp_path / "server.pem"),
        tls_client_ca=str(tmp_path / "client-ca.pem"),
    )
    bind = BindTransceiver(sequence_number=1, system_id="acme1", password="s3cret")
    # The customer is bound to its certificate: not over plain TCP, not over TLS without it.
    without = ssl.create_default_context()
    server_ca.configure_trust(without)
    for link in (await connect(plain), await connect(tls_port, without)):
        with pytest.raises(BindFailed) as failed:
            await link.bind(bind)
        assert failed.value.command_status == S.ESME_RBINDFAIL
        link.abort()
    with_cert = ssl.create_default_context()
    server_ca.configure_trust(with_cert)
    with_cert.load_cert_chain(str(tmp_path / "good.pem"))
    link = await connect(tls_port, with_cert)
    await link.bind(bind)
    assert (await submit(link, "85261234567")).command_status == 0
    link.abort()


# -- receipts ------------------------------------------------------------------------------


def final_report(store: Store, seeded: Seeded, uid: str, state: int = 2) -> None:
    """What the dispatcher writes when the carrier's receipt makes the message final."""
    store.enqueue_report_now(
        sms_uid=uid,
        customer_id=seeded.customer_id,
        sms_state=state,
        result_desc="DELIVRD" if state == 2 else "UNDELIV",
        report_ms=store.now_ms(),
    )


def outbox(store: Store, uid: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(
            select(tables.report_outbox).where(tables.report_outbox.c.sms_uid == uid)
        ).one()


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls the database)
            await asyncio.sleep(0.05)


async def test_receipt_waits_for_a_receiving_session_then_arrives_once(
    store: Store, seeded: Seeded, links: Bind
) -> None:
    tx = await links("acme1", "s3cret", BindTransmitter)
    asked = await submit(tx, "85261234567", registered_delivery=1)
    plain = await submit(tx, "85261234568")  # no receipt asked: the HTTP side's report
    final_report(store, seeded, asked.message_id)
    final_report(store, seeded, plain.message_id)
    # The HTTP pusher's claim leaves the SMPP receipt alone (the customer has no callback:
    # its own report is held, not returned, either way).
    assert store.claim_due_reports(store.now_ms() + 1, 10) == []
    await asyncio.sleep(1.2)  # nobody can receive yet: it waits in the outbox
    assert outbox(store, asked.message_id).done_ms is None
    assert outbox(store, plain.message_id).last_error is not None  # held by the HTTP side

    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    # A different session of the account than the one the message was sent on.
    await links("acme1", "s3cret", BindTransceiver, on_deliver)
    await until(lambda: outbox(store, asked.message_id).done_ms is not None)
    await asyncio.sleep(0.6)
    assert len(received) == 1
    receipt = received[0]
    assert receipt.esm_class & 0x3C == 0x04
    assert receipt.receipted_message_id == asked.message_id and receipt.message_state == 2
    parsed = parse_receipt_text(receipt.short_message.decode("ascii"))
    assert parsed is not None and parsed.message_id == asked.message_id
    assert parsed.state == "DELIVRD"
    assert (receipt.source_addr, receipt.destination_addr) == ("85261234567", "Acme")


async def test_a_backlog_of_receipts_goes_out_back_to_back_not_one_window_per_poll(
    store: Store, seeded: Seeded, smpp_server: Any, links: Bind
) -> None:
    """60 receipts due, 10 in flight per session: rounds follow each other at once while they
    find receipts (one round per poll interval sent 20 receipts/s: bench/smpp_customer.py)."""
    sender = smpp_server.platform.smpp.receipts
    received: list[DeliverSm] = []

    async def on_deliver(pdu: Any) -> None:
        received.append(pdu)

    trx = await links("acme1", "s3cret", BindTransceiver, on_deliver)
    uids = [
        (await submit(trx, f"852612340{n:02d}", registered_delivery=1)).message_id
        for n in range(10, 70)
    ]
    await asyncio.sleep(0.6)  # the sender's current wait ends; the next ones last 30 s
    sender.poll_s = 30.0
    for uid in uids:
        final_report(store, seeded, uid)
    sender.wake()  # one wake-up, as a bind gives: the rest must follow without polls
    await until(lambda: len(received) == len(uids), within=10.0)
    assert sorted(r.receipted_message_id for r in received) == sorted(uids)


async def test_a_callback_that_is_down_does_not_hold_smpp_receipts(
    store: Store, seeded: Seeded, links: Bind
) -> None:
    tx = await links("acme1", "s3cret", BindTransmitter)
    asked = await submit(tx, "85261234567", registered_delivery=1)
    plain = await submit(tx, "85261234568")
    final_report(store, seeded, asked.message_id)
    final_report(store, seeded, plain.message_id)
    before = outbox(store, asked.message_id).next_attempt_ms
    later = store.now_ms() + 3_600_000
    # What the HTTP pusher records when the customer's callback is down: defer its reports.
    store.record_report_results([], now_ms=store.now_ms(), defer={seeded.customer_id: later})
    assert outbox(store, plain.message_id).next_attempt_ms == later
    assert outbox(store, asked.message_id).next_attempt_ms == before


async def test_refused_receipt_is_retried_and_failures_only_skips_success(
    store: Store, seeded: Seeded, smpp_server: Any, links: Bind
) -> None:
    smpp_server.platform.smpp.receipts.retry_base_s = 0.2
    calls: list[DeliverSm] = []

    async def refuse_first(pdu: Any) -> None:
        calls.append(pdu)
        if len(calls) == 1:
            raise RuntimeError("ESME busy")  # answered ESME_RX_T_APPN

    trx = await links("acme1", "s3cret", BindTransceiver, refuse_first)
    failed = await submit(trx, "85261234567", registered_delivery=1)
    only_failures = await submit(trx, "85261234568", registered_delivery=2)
    final_report(store, seeded, failed.message_id, state=5)  # UNDELIVERABLE
    final_report(store, seeded, only_failures.message_id, state=2)  # delivered: no receipt
    await until(lambda: outbox(store, failed.message_id).done_ms is not None)
    row = outbox(store, failed.message_id)
    assert row.attempts == 2 and row.last_error is None
    assert [p.receipted_message_id for p in calls] == [failed.message_id] * 2
    assert calls[1].message_state == 5
    skipped = outbox(store, only_failures.message_id)
    assert skipped.done_ms is not None and "failures only" in skipped.last_error


async def test_role_smpp_runs_the_smpp_server_alone(
    store: Store, seeded: Seeded, make_server: Any
) -> None:
    port = free_port()
    server = make_server(role="smpp", smpp_port=port)
    assert server.platform.dispatcher is None and server.platform.pusher is None
    link = await connect(port)
    await link.bind(BindTransmitter(sequence_number=1, system_id="acme1", password="s3cret"))
    resp = await submit(link, "85261234567")
    assert resp.command_status == 0
    with store.engine.connect() as conn:
        assert conn.execute(select(tables.messages.c.sms_uid)).scalar_one() == resp.message_id
    link.abort()
    # Its UIP listener answers health checks only.
    async with asyncio.timeout(10):
        reply = await asyncio.to_thread(httpx.post, server.url, content=b"{}", timeout=5)
    assert reply.status_code == 404


async def test_a_source_guessing_passwords_is_refused_for_a_while(
    seeded: Seeded, make_server: Any
) -> None:
    port = free_port()
    make_server(smpp_port=port, key_guess_limit=2)
    statuses = []
    for password in ("guess1", "guess2", "s3cret"):
        link = await connect(port)
        with pytest.raises(BindFailed) as failed:
            await link.bind(
                BindTransceiver(sequence_number=1, system_id="acme1", password=password)
            )
        statuses.append(failed.value.command_status)
        link.abort()
    # The right password too, once the source is blocked: no password check at all.
    assert statuses == [S.ESME_RINVPASWD, S.ESME_RINVPASWD, S.ESME_RBINDFAIL]


# -- concatenated parts --------------------------------------------------------------------

LONG_GSM = "A long text sent in parts, as most ESMEs send them (UDH or SAR). " * 6  # 3 segments


def udh_parts(text: str, ref: int, *, sixteen_bit: bool = False) -> list[bytes]:
    segments = split_for_submit(text, "gsm7", sixteen_bit=sixteen_bit)
    return [
        udh_concat(ref, len(segments), i + 1, sixteen_bit) + data for i, data in enumerate(segments)
    ]


async def send_parts(link: EsmeLink, dest: str, parts: list[dict[str, Any]]) -> list[Any]:
    """Every part written before any answer is awaited (a windowed ESME)."""
    futures = [
        link.send_request(
            SubmitSm(
                sequence_number=link.session.sequence.next(),
                destination_addr=dest,
                source_addr="Acme",
                **fields,
            )
        )
        for fields in parts
    ]
    return list(await asyncio.gather(*futures))


@pytest.mark.parametrize("sixteen_bit", [False, True])
async def test_udh_parts_are_one_message_answered_after_its_commit(
    store: Store, links: Bind, sixteen_bit: bool
) -> None:
    link = await links("acme1", "s3cret")
    parts = udh_parts(LONG_GSM, 7, sixteen_bit=sixteen_bit)
    assert len(parts) == 3
    resps = await send_parts(
        link, "85261234567", [{"esm_class": 0x40, "short_message": p} for p in parts]
    )
    assert [r.command_status for r in resps] == [0, 0, 0]
    assert len({r.message_id for r in resps}) == 1
    with store.engine.connect() as conn:
        row = conn.execute(select(tables.messages)).one()
    assert row.sms_uid == resps[0].message_id and row.content == LONG_GSM
    assert row.segments == 3 and row.fee_micros == 3 * 50_000


async def test_sar_parts_and_incomplete_or_repeated_parts(
    store: Store, smpp_server: Any, links: Bind
) -> None:
    link = await links("acme1", "s3cret")
    segments = split_for_submit(LONG_GSM, "gsm7")

    def sar(ref: int, seq: int, total: int) -> tuple[Tlv, ...]:
        return (
            Tlv(Tag.SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
            Tlv(Tag.SAR_TOTAL_SEGMENTS, bytes((total,))),
            Tlv(Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))),
        )

    resps = await send_parts(
        link,
        "85261234567",
        [{"short_message": s, "tlvs": sar(300, i + 1, 3)} for i, s in enumerate(segments)],
    )
    assert [r.command_status for r in resps] == [0, 0, 0] and resps[0].message_id
    # The same part twice: the second is refused, the message still completes.
    dup = await send_parts(
        link,
        "85261234568",
        [{"short_message": segments[0], "tlvs": sar(301, 1, 2)}] * 2
        + [{"short_message": segments[1], "tlvs": sar(301, 2, 2)}],
    )
    assert [r.command_status for r in dup] == [0, S.ESME_RSUBMITFAIL, 0]
    # A message whose last part never comes: its parts are refused, nothing is stored.
    smpp_server.platform.smpp.concat.timeout_s = 0.3
    lone = await send_parts(link, "85261234569", [{"short_message": segments[0],
                                                   "tlvs": sar(302, 1, 2)}])  # fmt: skip
    assert lone[0].command_status == S.ESME_RSUBMITFAIL and lone[0].message_id == ""
    with store.engine.connect() as conn:
        numbers = sorted(conn.execute(select(tables.messages.c.dest_msisdn)).scalars())
    assert numbers == ["61234567", "61234568"]
