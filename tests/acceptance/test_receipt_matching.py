"""Receipts are matched by (connector, carrier message id), not by the id alone.

Two carriers that number their messages with plain decimal counters hand out the same ids. Two
``cloudsms smsc-sim`` processes started with ``--first-id 1 --id-format decimal`` do exactly
that; one delivers everything, the other nothing. Receipts come a second after the submits, so
both carriers' mappings for each id are stored when the receipts arrive: a lookup by id alone
would give both receipts to one message and none to the other.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from seed import add_carrier, bump, seed_customer
from sqlalchemy import select
from test_end_to_end import CallbackSink, send

from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.store import Store

EXE = Path(sys.executable).with_name("cloudsms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Carrier:
    """``cloudsms smsc-sim`` in a process of its own, counting message ids from 1."""

    def __init__(self, *outcome: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(EXE), "smsc-sim", "--port", str(self.port), "--account", "cloudsms:secret",
             "--id-format", "decimal", "--first-id", "1", "--receipt-delay", "1", *outcome,
             "--quiet"],
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0, err


@pytest.fixture
def carriers() -> Iterator[tuple[Carrier, Carrier]]:
    delivering = Carrier("--delivered", "1")
    failing = Carrier("--delivered", "0", "--undeliverable", "1")
    try:
        yield delivering, failing
    finally:
        delivering.stop()
        failing.stop()


@pytest.mark.slow
def test_two_carriers_with_the_same_message_ids(
    store: Store, make_server: Any, carriers: tuple[Carrier, Carrier]
) -> None:
    delivering, failing = carriers
    with CallbackSink() as sink:
        seeded = seed_customer(store.engine, with_carrier=False, callback_url=sink.url)
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            first = add_carrier(conn, route_id, port=delivering.port, prefix="85261")
            second = add_carrier(conn, route_id, name="carrier-2", port=failing.port,
                                 prefix="85262")  # fmt: skip
        bump(store.engine)
        server = make_server(role="all", report_retry_base_s=0.2)
        numbers = [f"852-6{c}00000{i}" for c in (1, 2) for i in range(1, 6)]
        with httpx.Client(timeout=10) as client:
            sent = send(client, server.url, seeded.auth_key, seeded.route, 1, numbers, "hi")
        assert sent["RESULT_CODE"] == 1
        uids = [d["SMS_UID"] for d in sent["DETAIL_LIST"]]
        reports = {r["SMS_UID"]: r for r in sink.wait_for(len(uids), timeout=30)}

    ids: dict[int, set[str]] = {first: set(), second: set()}
    for uid, number in zip(uids, numbers, strict=True):
        [part] = store.parts_of(uid)
        ids[int(str(part["connector_id"]))].add(str(part["carrier_id"]))
        message = store.get_message(uid)
        assert message is not None
        want = MessageState.DELIVERED if number.startswith("852-61") else MessageState.UNDELIVERABLE
        assert message.state == want, (number, message.state)
    assert ids[first] == ids[second] == {"1", "2", "3", "4", "5"}  # the same ids on both
    assert set(reports) == set(uids)
    states = sorted(r["SMS_RESULT_LIST"][0]["SMS_STATE"] for r in reports.values())
    assert states == [2] * 5 + [5] * 5
