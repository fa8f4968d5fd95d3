"""What no carrier can be given is refused at acceptance (Invalid_parameter), never charged.

SMPP 3.4 gives source_addr and destination_addr at most 20 characters (§5.2.8, §5.2.9). The
document lets ORIGINAL_ADDR and DEST_MSISDN be longer (32), but such a message could never be
sent: it was once accepted, charged, and left retrying for hours.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from seed import Seeded, seed_customer
from test_uip_api import codes, packet, post
from typer.testing import CliRunner

from cloudsms.cli import app
from cloudsms.domain.codes import ResultCode
from cloudsms.storage.store import Store

INVALID = int(ResultCode.INVALID_PARAMETER)


@pytest.fixture
def seeded(store: Store) -> Seeded:
    return seed_customer(store.engine)


def test_sender_and_number_over_smpp_limits_are_refused(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    balance = store.customer_balance(seeded.customer_id)
    for sender in ("S" * 21, "A 32-character sender ID, see?!!"):
        status, ans = post(http, server.url, packet(seeded, ORIGINAL_ADDR=sender))
        assert (status, ans["RESULT_CODE"], ans["DETAIL_LIST"]) == (200, INVALID, []), sender
    assert store.count_messages() == 0 and store.customer_balance(seeded.customer_id) == balance

    _, ans = post(http, server.url, packet(seeded, ORIGINAL_ADDR="S" * 20))
    assert ans["RESULT_CODE"] == 1
    [message] = store.list_messages()
    assert message.sender == "S" * 20

    numbers = [{"COUNTRY_CODE": 852, "DEST_MSISDN": "6" * 17},  # 20 digits in all: sendable
               {"COUNTRY_CODE": 852, "DEST_MSISDN": "6" * 18}]  # fmt: skip
    _, ans = post(http, server.url, packet(seeded, SERIAL=8, MULTI_MSISDN_LIST=numbers))
    assert ans["RESULT_CODE"] == 1 and codes(ans) == [1, INVALID]
    assert ans["DETAIL_LIST"][1]["SMS_UID"] == ""
    assert store.count_messages() == 2


def test_operators_cannot_set_a_default_sender_no_carrier_takes(
    database_url: str, seeded: Seeded
) -> None:
    runner = CliRunner()
    url = database_url
    refused = runner.invoke(app, ["--database-url", url, "customers", "set", "acme",
                                  "--default-sender", "S" * 21])  # fmt: skip
    assert refused.exit_code != 0 and "1 to 20 printable" in refused.output.replace("\n", " ")
    taken = runner.invoke(app, ["--database-url", url, "customers", "set", "acme",
                                "--default-sender", "S" * 20])  # fmt: skip
    assert taken.exit_code == 0, taken.output
