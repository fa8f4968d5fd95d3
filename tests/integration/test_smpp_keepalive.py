"""The customers' SMPP server checks idle sessions with enquire_link (issue 15).

A session whose ESME vanished without FIN or RST (a NAT or firewall on the way forgot the
connection) while nothing was being sent used to stay bound until TCP gave up, holding a slot
of its account: with ``max_sessions`` 1 the customer could not bind again meanwhile. The server
now sends enquire_link on a session idle for ``smpp_enquire_link_s`` and aborts it when no
enquire_link_resp comes within its response timeout.

Our own ESME link plays the customer over a real socket against `cloudsms serve` (role api,
both engines), with a short interval (0.3 s) and timeout (1 s) so the test runs in seconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from seed import seed_customer

from cloudsms.services.operator import Operator
from cloudsms.smpp.constants import CommandStatus as S
from cloudsms.smpp.pdu import BindTransceiver, EnquireLink, Pdu, SubmitSm
from cloudsms.storage.store import Store
from cloudsms.transport.errors import BindFailed
from cloudsms.transport.esme import EsmeLink

#: smpp_enquire_link_s of the server under test (30 s by default).
INTERVAL_S = 0.3
#: How long the server waits for enquire_link_resp (10 s by default; shorter here).
TIMEOUT_S = 1.0

Bind = Callable[[], Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ignore(_pdu: Any) -> None:
    return None


class CountingLink(EsmeLink):
    """A customer's ESME that counts the enquire_link it receives (and answers them)."""

    def __init__(self) -> None:
        # enquire_link_s=0: it sends none of its own (they would make the session not idle).
        super().__init__(name="customer", on_deliver=_ignore, response_timeout_s=10,
                         enquire_link_s=0)  # fmt: skip
        self.enquire_links = 0

    def request_received(self, pdu: Pdu) -> None:
        if type(pdu) is EnquireLink:
            self.enquire_links += 1
        super().request_received(pdu)


@pytest.fixture
def smpp(store: Store, make_server: Any) -> Any:
    seeded = seed_customer(store.engine)
    Operator(store).add_smpp_account(
        "acme", "solo", password="s3cret", route=seeded.route, max_sessions="1"
    )
    server = make_server(smpp_port=free_port(), smpp_enquire_link_s=INTERVAL_S)
    smpp = server.platform.smpp
    assert smpp is not None
    smpp.response_timeout_s = TIMEOUT_S  # for the sessions bound from now on
    return smpp


@pytest.fixture
async def bind(smpp: Any) -> AsyncIterator[Bind]:
    opened: list[CountingLink] = []

    async def bind() -> CountingLink:
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(CountingLink, "127.0.0.1", smpp.port)
        opened.append(link)
        await link.bind(BindTransceiver(sequence_number=1, system_id="solo", password="s3cret"))
        return link

    yield bind
    for link in opened:
        link.abort()


async def test_a_session_that_answers_enquire_link_stays_bound(smpp: Any, bind: Bind) -> None:
    link = await bind()
    # Several intervals, and more than the response timeout: an unanswered enquire_link would
    # have closed the session by now.
    await asyncio.sleep(INTERVAL_S * 4 + TIMEOUT_S)
    assert link.enquire_links >= 4
    assert link.is_open and [s.system_id for s in smpp.list_sessions()] == ["solo"]
    resp = await link.send_request(
        SubmitSm(
            sequence_number=link.session.sequence.next(),
            destination_addr="85261234567",
            short_message=b"Still here",
        )
    )
    assert resp.command_status == S.ESME_ROK


async def test_a_silently_dead_idle_session_is_closed_and_its_slot_freed(
    smpp: Any, bind: Bind, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cloudsms")
    link = await bind()
    with pytest.raises(BindFailed) as refused:  # max_sessions 1: the slot is taken
        await bind()
    assert refused.value.command_status == S.ESME_RBINDFAIL
    # The ESME's end goes silent: it stops reading and answering, the connection stays up
    # (no FIN, no RST), as when a NAT or firewall on the way forgets it.
    assert link.transport is not None
    link.transport.pause_reading()
    silent = time.monotonic()
    async with asyncio.timeout(INTERVAL_S + TIMEOUT_S + 10):
        while smpp.list_sessions():  # noqa: ASYNC110 (the server runs on its own thread)
            await asyncio.sleep(0.02)
    took = time.monotonic() - silent
    # An interval of idleness, the timeout, and the response sweep's step (timeout / 4).
    assert took <= INTERVAL_S + TIMEOUT_S * 1.25 + 0.5, took
    again = await bind()  # the slot is free again
    assert again.is_open
    closed = [r for r in caplog.records if "did not answer enquire_link" in r.getMessage()]
    assert len(closed) == 1 and "'solo'" in closed[0].getMessage()
    print(f"\nsilent idle session closed {took:.2f} s after it went silent")
