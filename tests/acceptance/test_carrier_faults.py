"""Carrier faults under load: a link dropped mid-window, a carrier that stops answering, a
carrier that answers "throttled". No acknowledged message is lost, and the retries are the
documented ones (docs/operations.md, "Carrier faults"):

* dropped link / no answer: the outcome of the submits in flight is unknown, so each goes back to
  the queue and is submitted again (1 s, then doubling to 5 min) — the carrier may see it twice,
  but it accepts (ESME_ROK) each message once, and one receipt, one report follows;
* throttled (ESME_RTHROTTLED / ESME_RMSGQFUL): the link backs off and the same segment is sent
  again on the same link (up to 5 times, then back to the queue 2 s later): nothing is lost and
  nothing is accepted twice.

The platform runs in-process (role all, SQLite); the SMSC simulator in its own thread.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from platform_fixtures import RunningServer
from test_crash_pipeline import WINDOW, check_store, describe, seed, wait_reported, wait_settled
from test_end_to_end import CallbackSink, SimulatorThread

from cloudsms.config import Settings
from cloudsms.simulator.behaviours import (
    Behaviour,
    DisconnectMidWindow,
    Happy,
    NoResponse,
    Throttling,
)
from cloudsms.smpp.constants import CommandStatus

MESSAGES = 400


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as s:
        yield s


def run(url: str, sink: CallbackSink, carrier: Behaviour, **change: Any) -> tuple[
    dict[str, str], SimulatorThread, float
]:  # fmt: skip
    """Send MESSAGES through a carrier behaving so; returns (acked, simulator, seconds)."""
    smsc = SimulatorThread(accounts={"c1": "secret"}, behaviour=carrier)
    with smsc:
        seeded = seed(url, smsc.sim.port, sink.url, ["c1"])
        settings = Settings.load(
            environ={}, database_url=url, role="all", config_poll_s=0.2, admin_enabled=False,
            report_retry_base_s=0.5, report_retry_max_delay_s=2.0,
        )  # fmt: skip
        started = time.monotonic()
        with RunningServer(settings) as server, httpx.Client(timeout=10) as client:
            acked: dict[str, str] = {}
            for serial in range(1, MESSAGES // 10 + 1):
                numbers = [f"6{serial:04d}{i:03d}" for i in range(10)]
                body = {
                    "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial,
                    "TIME": "t", "AUTH_KEY": seeded.auth_key, "ROUTE_ID": seeded.route,
                    "VERSION": "2021-01-01", "SMS_CONTENT": "fault",
                    "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": 852, "DEST_MSISDN": n} for n in numbers],
                }  # fmt: skip
                answer = orjson.loads(client.post(server.url, content=orjson.dumps(body)).content)
                assert answer["RESULT_CODE"] == 1
                for number, detail in zip(numbers, answer["DETAIL_LIST"], strict=True):
                    acked[detail["SMS_UID"]] = "852" + number
            for attribute, value in change.items():  # the carrier changes its ways mid-test
                time.sleep(value[0])
                setattr(smsc.sim, attribute, value[1])
            missing = wait_reported(sink, set(acked), timeout=60)
            assert missing == set(), f"{len(missing)} never reported: {describe(url, missing)}"
            wait_settled(url)
        return acked, smsc, time.monotonic() - started


def accepted_once(smsc: SimulatorThread, acked: dict[str, str]) -> collections.Counter[str]:
    """Each message accepted (ESME_ROK) by the carrier exactly once; returns all submits."""
    segments = list(smsc.sim.segments)
    ok = collections.Counter(s.destination_addr for s in segments if s.status == 0)
    assert sorted(ok[n] for n in acked.values()) == [1] * len(acked)
    return collections.Counter(s.destination_addr for s in segments)


@pytest.mark.slow
def test_link_dropped_mid_window(sqlite_url: str, sink: CallbackSink) -> None:
    acked, smsc, took = run(sqlite_url, sink, DisconnectMidWindow(after_n=100, hold=20))
    check_store(sqlite_url, acked)
    submits = accepted_once(smsc, acked)
    resent = sum(1 for n in acked.values() if submits[n] > 1)
    assert 0 < resent <= WINDOW, resent  # the unanswered ones, no more than a window
    print(f"\ndisconnect mid-window: {len(acked)} delivered in {took:.1f} s, {resent} resent")


@pytest.mark.slow
def test_carrier_that_stops_answering(sqlite_url: str, sink: CallbackSink) -> None:
    """No answers for 4 s (submits time out after 2 s and are retried), then it recovers."""
    acked, smsc, took = run(sqlite_url, sink, NoResponse(after_n=100), behaviour=(4.0, Happy()))
    check_store(sqlite_url, acked)
    submits = accepted_once(smsc, acked)
    unanswered = sum(1 for s in smsc.sim.segments if s.status is None)
    resent = sum(1 for n in acked.values() if submits[n] > 1)
    assert unanswered > 0 and resent > 0
    print(f"\nno response for 4 s: {len(acked)} delivered in {took:.1f} s, {resent} resent, "
          f"{unanswered} submits unanswered")  # fmt: skip


@pytest.mark.slow
def test_carrier_that_throttles(sqlite_url: str, sink: CallbackSink) -> None:
    acked, smsc, took = run(sqlite_url, sink, Throttling(every_n=3))
    check_store(sqlite_url, acked)
    accepted_once(smsc, acked)
    throttled = sum(1 for s in smsc.sim.segments if s.status == CommandStatus.ESME_RTHROTTLED)
    assert throttled >= len(acked) // 3
    print(f"\nthrottled every 3rd submit: {len(acked)} delivered in {took:.1f} s, "
          f"{throttled} throttled answers")  # fmt: skip
