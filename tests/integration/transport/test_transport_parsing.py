"""The simulator's option parsers and the throttle primitives (no sockets needed)."""

from __future__ import annotations

import random

import pytest

from cloudsms.cli.simulator import build_simulator, parse_accounts
from cloudsms.exceptions import ConfigError
from cloudsms.simulator import (
    DisconnectMidWindow,
    ErrorOnSubmit,
    Exponential,
    Fixed,
    Happy,
    NoResponse,
    ReceiptPolicy,
    RejectBind,
    SlowResponse,
    Throttling,
    Uniform,
    parse_behaviour,
    parse_delay,
)
from cloudsms.simulator.behaviours import DISCONNECT, NO_REPLY
from cloudsms.smpp.constants import CommandStatus
from cloudsms.transport.throttle import Backoff, TokenBucket


def test_parse_behaviour() -> None:
    assert isinstance(parse_behaviour("happy"), Happy)
    assert parse_behaviour("throttle:5").every_n == 5  # type: ignore[attr-defined]
    assert parse_behaviour("throttle-rate:100").rate == 100  # type: ignore[attr-defined]
    assert isinstance(parse_behaviour("slow:0.5"), SlowResponse)
    assert isinstance(parse_behaviour("noresponse"), NoResponse)
    assert isinstance(parse_behaviour("disconnect:10:3"), DisconnectMidWindow)
    error = parse_behaviour("error:0x0B:2")
    assert isinstance(error, ErrorOnSubmit) and error.status == CommandStatus.ESME_RINVDSTADR
    assert isinstance(parse_behaviour("rejectbind:ESME_RINVPASWD"), RejectBind)
    for bad in ("nope", "throttle", "throttle:x", "slow:-1", "error:ESME_NOPE", "happy:1"):
        with pytest.raises(ValueError):
            parse_behaviour(bad)


def test_behaviour_decisions() -> None:
    throttle = Throttling(every_n=3)
    assert [throttle.on_submit(i).status for i in range(1, 7)] == [0, 0, 88, 0, 0, 88]
    disconnect = DisconnectMidWindow(after_n=2, hold=2)
    actions = [disconnect.on_submit(i).action for i in range(1, 7)]
    assert actions == [0, 0, NO_REPLY, DISCONNECT, 0, 0]  # once, then healthy
    assert [NoResponse(1).on_submit(i).action for i in (1, 2)] == [0, NO_REPLY]


def test_parse_delay_and_policy() -> None:
    assert parse_delay("0.25") == Fixed(0.25)
    assert parse_delay("uniform:1:2") == Uniform(1.0, 2.0)
    assert parse_delay("exp:3") == Exponential(3.0)
    for bad in ("-1", "uniform:2:1", "exp", "gauss:1", "x"):
        with pytest.raises(ValueError):
            parse_delay(bad)
    rng = random.Random(0)
    policy = ReceiptPolicy(delivered=0.9, expired=0.1)
    draws = [policy.outcome("1", rng) for _ in range(2000)]
    assert 0.85 < draws.count("delivered") / 2000 < 0.95
    assert set(draws) == {"delivered", "expired"}
    with pytest.raises(ValueError):
        ReceiptPolicy(delivered=0)


def test_cli_options_are_validated() -> None:
    assert parse_accounts(["a:b", "c:"]) == {"a": "b", "c": ""}
    for bad in (["nocolon"], ["x" * 16 + ":p"], ["u:" + "p" * 9]):
        with pytest.raises(ConfigError):
            parse_accounts(bad)
    kw = {
        "host": "127.0.0.1",
        "port": 0,
        "accounts": [],
        "behaviour": "happy",
        "delivered": 1.0,
        "undeliverable": 0.0,
        "rejected": 0.0,
        "expired": 0.0,
        "receipt_delay": "0",
        "id_format": "hex",
        "receipt_id_format": None,
        "seed": 1,
        "record_limit": 0,
    }
    sim = build_simulator(**kw)  # type: ignore[arg-type]
    assert sim.accounts is None and sim.id_format == "hex" and sim.deliver_window == 100
    assert build_simulator(**{**kw, "deliver_window": 400}).deliver_window == 400  # type: ignore[arg-type]
    counting = build_simulator(**{**kw, "id_format": "decimal", "first_id": 1})  # type: ignore[arg-type]
    assert [counting._new_id() for _ in range(3)] == ["1", "2", "3"]
    for key, value in (
        ("behaviour", "bogus"),
        ("receipt_delay", "soon"),
        ("id_format", "octal"),
        ("delivered", 0.0),
        ("port", 70000),
        ("deliver_window", 0),
        ("first_id", -1),
    ):
        with pytest.raises(ConfigError):
            build_simulator(**{**kw, key: value})  # type: ignore[arg-type]


def test_backoff_doubles_and_resets() -> None:
    b = Backoff(0.5, 3)
    assert [b.next() for _ in range(4)] == [0.5, 1.0, 2.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_token_bucket_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=50, clock=lambda: now[0])  # burst 5
    taken = 0
    while taken < 30:  # a sender that waits exactly as long as the bucket says
        if bucket.try_take():
            taken += 1
        else:
            wait = bucket.wait_s()
            assert wait > 0
            now[0] += wait
    assert now[0] == pytest.approx(0.5)  # (30 - 5) / 50 s
    assert bucket.wait_s() > 0 and not bucket.try_take()
