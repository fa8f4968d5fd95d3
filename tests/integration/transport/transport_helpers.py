"""Helpers of the transport tests: connector configs, submit PDUs, an on_deliver inbox."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from cloudsms.domain.routing import ConnectorConfig
from cloudsms.simulator import SmscSimulator
from cloudsms.smpp.pdu import DataSm, DeliverSm, SubmitSm
from cloudsms.transport import SmppClient

ACCOUNTS = {"acme": "secret"}


def config(port: int, **overrides: Any) -> ConnectorConfig:
    base = ConnectorConfig(
        id=1,
        name="test",
        host="127.0.0.1",
        port=port,
        system_id="acme",
        password="secret",
        window=10,
        enquire_link_s=30,
        response_timeout_s=5,
        reconnect_max_s=1,
    )
    return dataclasses.replace(base, **overrides)


def submit_pdu(destination: str = "85261234561", text: bytes = b"hello", **kw: Any) -> SubmitSm:
    return SubmitSm(
        sequence_number=0,
        source_addr="CloudSMS",
        source_addr_ton=5,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=destination,
        short_message=text,
        **kw,
    )


class Inbox:
    """Collects what on_deliver receives."""

    def __init__(self) -> None:
        self.pdus: list[DeliverSm | DataSm] = []
        self.event = asyncio.Event()

    async def __call__(self, pdu: DeliverSm | DataSm) -> None:
        self.pdus.append(pdu)
        self.event.set()

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.pdus) < count:
                self.event.clear()
                await self.event.wait()


SimFactory = Callable[..., Awaitable[SmscSimulator]]
ClientFactory = Callable[..., Awaitable[SmppClient]]


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (state owned by other objects: poll)
            await asyncio.sleep(0.02)
