"""The refusal sentences that need the request's bytes, and the refusal log's budget."""

from __future__ import annotations

import logging

import orjson
import pytest

from cloudsms.api.refusals import RefusalLog, not_json
from cloudsms.domain.codes import ResultCode


def _reason(body: bytes) -> str:
    with pytest.raises(orjson.JSONDecodeError) as caught:
        orjson.loads(body)
    return not_json(body, caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"SMS_CONTENT": "abc',
        '{"SMS_CONTENT": "您好"}'.encode()[:-4],  # cut inside a UTF-8 character
        b'{"A": [1, 2',
    ],
)
def test_a_body_cut_short_is_named(body: bytes) -> None:
    assert _reason(body).startswith(f"the body ended before its JSON did ({len(body)} bytes")


def test_other_bodies_that_are_not_json() -> None:
    assert _reason(b'{"A": 1} x') == (
        "the body is not valid JSON: unexpected content after document (line 1, column 10)"
    )
    assert _reason(b'{"A": "\xff"}') == "the body is not UTF-8: byte 0xFF at offset 7"


def test_log_budget_per_customer(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RefusalLog(budget=2, window_s=10, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="cloudsms.api.refusals")
    for serial in range(1, 6):
        log.packet("acme", "192.0.2.7", serial, ResultCode.INVALID_PARAMETER, "PRIORITY …")
    log.packet(None, "192.0.2.8", 1, ResultCode.INVALID_CONTEXT, "the body …")
    now[0] = 11.0
    log.packet("acme", "192.0.2.7", 6, ResultCode.INVALID_PARAMETER, "PRIORITY …")
    assert [r.getMessage() for r in caplog.records] == [
        "customer acme (192.0.2.7): packet SERIAL 1 refused, Invalid_parameter: PRIORITY …",
        "customer acme (192.0.2.7): packet SERIAL 2 refused, Invalid_parameter: PRIORITY …",
        "caller 192.0.2.8: packet SERIAL 1 refused, Invalid_context: the body …",
        "customer acme: 3 more refusals not logged in the last 10 s",
        "customer acme (192.0.2.7): packet SERIAL 6 refused, Invalid_parameter: PRIORITY …",
    ]


def test_recipients_are_summed_up_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cloudsms.api.refusals")
    refused = [(f"#{i} +86 138", "Invalid_parameter", "DEST_MSISDN …") for i in range(1, 6)]
    RefusalLog().recipients("acme", None, 9, refused, 200)
    [record] = caplog.records
    assert record.getMessage() == (
        "customer acme (unknown address): packet SERIAL 9: 5 of 200 recipients refused:"
        " #1 +86 138 Invalid_parameter: DEST_MSISDN …; #2 +86 138 Invalid_parameter:"
        " DEST_MSISDN …; #3 +86 138 Invalid_parameter: DEST_MSISDN …; and 2 more"
    )
