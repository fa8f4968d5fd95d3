"""Fixtures: a simulator on 127.0.0.1 (ephemeral port) and clients pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from transport_helpers import ACCOUNTS, ClientFactory, Inbox, SimFactory

from cloudsms.domain.routing import ConnectorConfig
from cloudsms.simulator import SmscSimulator
from cloudsms.smpp.pdu import DataSm, DeliverSm
from cloudsms.transport import SmppClient


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    sims: list[SmscSimulator] = []

    async def make(**kw: Any) -> SmscSimulator:
        kw.setdefault("accounts", ACCOUNTS)
        kw.setdefault("seed", 1)
        sim = SmscSimulator("127.0.0.1", 0, **kw)
        await sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[SmppClient] = []

    async def make(
        cfg: ConnectorConfig,
        on_deliver: Callable[[DeliverSm | DataSm], Awaitable[None]] | None = None,
        *,
        bound: bool = True,
        **kw: Any,
    ) -> SmppClient:
        kw.setdefault("reconnect_initial_s", 0.1)
        client = SmppClient(cfg, on_deliver=on_deliver or Inbox(), **kw)
        clients.append(client)
        await client.start()
        if bound:
            assert await client.wait_bound(5), client.stats().last_error
        return client

    yield make
    for client in clients:
        async with asyncio.timeout(10):
            await client.stop()
