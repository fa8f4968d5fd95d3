"""SmppClient against the simulator on 127.0.0.1, one test per behaviour of the catalogue."""

from __future__ import annotations

import asyncio
import time

from transport_helpers import ClientFactory, SimFactory, config, eventually, submit_pdu

from cloudsms.simulator import (
    DisconnectMidWindow,
    ErrorOnSubmit,
    NoResponse,
    RejectBind,
    SlowResponse,
    Throttling,
)
from cloudsms.smpp.constants import CommandStatus
from cloudsms.transport import ConnectionLost, NotBound, SubmitTimeout

S = CommandStatus


async def test_happy_submits_get_ids_and_arrive(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    client = await make_client(config(sim.port))
    assert client.state == "bound" and client.available
    async with asyncio.timeout(10):
        resps = await asyncio.gather(
            *(client.submit(submit_pdu(f"8526123450{i}", b"msg %d" % i)) for i in range(10))
        )
    assert [r.command_status for r in resps] == [0] * 10
    ids = [r.message_id for r in resps]
    assert len(set(ids)) == 10 and all(ids)
    assert sorted(m.text for m in sim.received) == sorted(f"msg {i}" for i in range(10))
    assert {m.message_ids[0] for m in sim.received} == set(ids)
    stats = client.stats()
    assert stats.submitted == stats.acked_ok == 10 and stats.window_in_use == 0


async def test_throttling_backs_off_then_recovers(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim(behaviour=Throttling(every_n=4))
    states: list[str] = []
    client = await make_client(config(sim.port), on_state=states.append)
    delivered: list[str] = []

    async def send_until_accepted(i: int) -> None:
        dest = f"8526123{i:04d}"
        while True:
            resp = await client.submit(submit_pdu(dest))
            if resp.command_status == 0:
                delivered.append(dest)
                return
            assert resp.command_status == S.ESME_RTHROTTLED

    start = time.monotonic()
    async with asyncio.timeout(20):
        await asyncio.gather(*(send_until_accepted(i) for i in range(12)))
    assert sorted(delivered) == sorted(f"8526123{i:04d}" for i in range(12))
    assert "throttled" in states and states[-1] == "bound"
    stats = client.stats()
    assert stats.throttled >= 1 and stats.acked_ok == 12
    assert time.monotonic() - start >= 0.5  # at least one back-off was waited out
    ok_ids = [seg.message_id for seg in sim.segments if seg.status == 0]
    assert len(ok_ids) == 12


async def test_no_response_times_out_and_recycles_the_link(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(behaviour=NoResponse(after_n=2))
    client = await make_client(config(sim.port, response_timeout_s=1))
    for _ in range(2):
        assert (await client.submit(submit_pdu())).command_status == 0
    start = time.monotonic()
    async with asyncio.timeout(5):
        try:
            await client.submit(submit_pdu())
            raise AssertionError("expected SubmitTimeout")
        except SubmitTimeout:
            pass
    assert 0.9 <= time.monotonic() - start <= 2.5
    assert client.stats().timeouts == 1
    assert await client.wait_bound(5)  # a new link was bound
    stats = client.stats()
    assert stats.reconnects >= 1 and stats.window_in_use == 0


async def test_dead_smsc_detected_by_enquire_link(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim(behaviour=NoResponse(enquire_link=False))
    client = await make_client(config(sim.port, enquire_link_s=1, response_timeout_s=1))
    await eventually(lambda: client.stats().reconnects >= 1, within=6)
    assert sim.enquire_links >= 1
    assert "timed out" in (client.stats().last_error or "")


async def test_slow_responses_pipeline_within_the_window(
    make_sim: SimFactory, make_client: ClientFactory
):
    sim = await make_sim(behaviour=SlowResponse(0.3))
    client = await make_client(config(sim.port, window=10))
    start = time.monotonic()
    async with asyncio.timeout(10):
        resps = await asyncio.gather(*(client.submit(submit_pdu()) for _ in range(30)))
    elapsed = time.monotonic() - start
    assert all(r.command_status == 0 for r in resps)
    # 30 submits, 10 at a time, 0.3 s each: about 0.9 s; one at a time would be 9 s.
    assert 0.85 <= elapsed < 2.5
    assert sim.max_outstanding == 10  # the window is full, and never more than full


async def test_disconnect_mid_window(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim(behaviour=DisconnectMidWindow(after_n=5, hold=3))
    client = await make_client(config(sim.port, window=10))
    results: list[object] = []

    async def one(i: int) -> None:
        try:
            results.append(await client.submit(submit_pdu(f"8526100{i:04d}")))
        except (ConnectionLost, NotBound) as exc:
            results.append(exc)

    async with asyncio.timeout(10):
        await asyncio.gather(*(one(i) for i in range(20)))
    ok = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, ConnectionLost)]
    not_bound = [r for r in results if isinstance(r, NotBound)]
    stats = client.stats()
    assert len(ok) == 5
    # Exactly the submits that were written and unanswered are "outcome unknown"...
    assert len(lost) == stats.submitted - 5 and 3 <= len(lost) <= 10
    # ...and the rest were never sent.
    assert len(not_bound) == 20 - 5 - len(lost)
    assert stats.timeouts == 0 and stats.window_in_use == 0
    assert await client.wait_bound(5)  # reconnected by itself
    assert client.stats().reconnects == 1
    resp = await client.submit(submit_pdu())
    assert resp.command_status == 0


async def test_error_on_submit_returns_the_status(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim(behaviour=ErrorOnSubmit(S.ESME_RINVDSTADR, every_n=2))
    client = await make_client(config(sim.port))
    statuses = [(await client.submit(submit_pdu())).command_status for _ in range(4)]
    assert statuses == [0, S.ESME_RINVDSTADR, 0, S.ESME_RINVDSTADR]
    stats = client.stats()
    assert stats.acked_ok == 2 and stats.acked_error == 2 and stats.throttled == 0
    assert client.state == "bound"


async def test_bad_password_keeps_retrying_down(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim()
    states: list[str] = []
    client = await make_client(
        config(sim.port, password="wrong"), bound=False, on_state=states.append
    )
    assert not await client.wait_bound(1.5)
    assert client.state in ("down", "connecting") and not client.available
    assert "ESME_RINVPASWD" in (client.stats().last_error or "")
    assert states.count("connecting") >= 3  # retried, with back-off
    try:
        await client.submit(submit_pdu())
        raise AssertionError("expected NotBound")
    except NotBound:
        pass
    assert sim.submit_count == 0


async def test_reject_bind_behaviour(make_sim: SimFactory, make_client: ClientFactory):
    sim = await make_sim(behaviour=RejectBind())
    client = await make_client(config(sim.port), bound=False)
    assert not await client.wait_bound(0.5)
    assert "ESME_RBINDFAIL" in (client.stats().last_error or "")
