"""submit_sm / submit_multi read as a UIP packet: destinations, validity_period (issue 15)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from cloudsms.api.smpp_submit import Refused, read_submit
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.submit import build_submits
from cloudsms.smpp import codec
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.pdu import DistributionList, SmeAddress, SubmitMulti, SubmitSm, UnsuccessSme

NOW = dt.datetime(2026, 12, 6, 4, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def read(pdu: SubmitSm | SubmitMulti) -> Any:
    return read_submit(pdu, route="R", serial=1, now=NOW, max_schedule=dt.timedelta(days=7))


def sm(**fields: Any) -> SubmitSm:
    return SubmitSm(
        sequence_number=1, destination_addr="85261234567", short_message=b"hi", **fields
    )


def test_a_submit_multi_is_one_packet_with_its_refused_destinations_apart() -> None:
    reading = read(
        SubmitMulti(
            sequence_number=1,
            dest_addresses=(
                DistributionList("team"),
                SmeAddress(1, 1, "85261234567"),
                SmeAddress(1, 1, "85-2612"),
                SmeAddress(1, 1, "+8613800138000"),
            ),
            short_message=b"hi",
        )
    )
    assert reading.request.recipients == [
        {"COUNTRY_CODE": 852, "DEST_MSISDN": "61234567"},
        {"COUNTRY_CODE": 86, "DEST_MSISDN": "13800138000"},
    ]
    assert reading.positions == (1, 3)
    assert reading.unsuccess == (
        (0, UnsuccessSme(0, 0, "team", S.ESME_RINVDLNAME)),
        (2, UnsuccessSme(1, 1, "85-2612", S.ESME_RINVDSTADR)),
    )


@pytest.mark.parametrize("count", [0, 201])
def test_a_submit_multi_needs_1_to_200_destinations(count: int) -> None:
    dests = tuple(SmeAddress(1, 1, f"852612{n:05d}") for n in range(count))
    with pytest.raises(Refused) as refused:
        read(SubmitMulti(sequence_number=1, dest_addresses=dests, short_message=b"hi"))
    assert refused.value.status == S.ESME_RINVNUMDESTS


def test_validity_period_absolute_or_relative_is_the_deadline() -> None:
    assert read(sm()).expires_ms is None
    assert read(sm(validity_period="000000013000000R")).expires_ms == NOW_MS + 90 * 60_000
    # 12:00 at UTC+8 (32 quarter-hours) is 04:00 UTC: the next day's
    assert read(sm(validity_period="261207120000032+")).expires_ms == NOW_MS + 86_400_000


@pytest.mark.parametrize(
    "fields",
    [
        {"validity_period": "26120712000003"},  # malformed
        {"validity_period": "261206035959000+"},  # a second ago
        {"validity_period": "000000000000000R"},  # now
        {"schedule_delivery_time": "000000020000000R", "validity_period": "000000010000000R"},
    ],
)
def test_a_validity_that_could_only_expire_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(Refused) as refused:
        read(sm(**fields))
    assert refused.value.status == S.ESME_RINVEXPIRY


def test_the_deadline_goes_to_the_carrier_as_an_absolute_utc_validity() -> None:
    cfg = ConnectorConfig(id=1, name="c", host="127.0.0.1", port=2775, system_id="u", password="p")
    common: dict[str, Any] = dict(
        sender="CloudSMS", destination="85267000011", encoding="gsm7", connector=cfg, reference=1
    )
    [plain] = build_submits(text="hello", **common)
    parts = build_submits(text="x" * 200, expires_ms=NOW_MS + 3_600_000, **common)
    assert plain.validity_period == ""
    assert [p.validity_period for p in parts] == ["261206050000000+"] * 2
    assert codec.decode(codec.encode(parts[0])) == parts[0]
