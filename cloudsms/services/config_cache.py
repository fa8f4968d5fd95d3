"""The operator configuration as the accept path reads it: in memory, swapped atomically.

Strategy: a background task asks the store for ``config_version`` every ``poll_s`` seconds (a
one-row read) and, when it moved, loads a new ``ConfigSnapshot`` in a worker thread and derives
the indexes the hot path wants. Operator changes made by the CLI, the admin API or another
process therefore take effect within a second, without restart and without a read per request.

AUTH_KEYs are indexed by their SHA-256 digest and then compared with ``hmac.compare_digest``: the
lookup reveals nothing about the key, and the final comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudsms.domain.models import ConfigSnapshot, Customer
from cloudsms.domain.routing import RoutingTable
from cloudsms.periodic import Periodic
from cloudsms.storage.interfaces import SnapshotSource

log = logging.getLogger("cloudsms.config")


@dataclass(frozen=True, slots=True)
class PriceTable:
    by_prefix: dict[str, int]
    max_len: int

    def price_for(self, number: str) -> int | None:
        """Longest-prefix match of ``number`` (calling code + MSISDN digits)."""
        get = self.by_prefix.get
        for length in range(min(self.max_len, len(number)), 0, -1):
            price = get(number[:length])
            if price is not None:
                return price
        return None


@dataclass(frozen=True, slots=True)
class PreparedConfig:
    snapshot: ConfigSnapshot
    #: Route rules and connectors (the dispatcher's table; the API asks it for reject causes).
    routing: RoutingTable = field(default_factory=lambda: RoutingTable.build({}, [], {}))
    by_key_digest: dict[bytes, Customer] = field(default_factory=dict)
    price_tables: dict[int, PriceTable] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: ConfigSnapshot, routing: RoutingTable) -> PreparedConfig:
        return cls(
            snapshot=snapshot,
            routing=routing,
            by_key_digest={key_digest(k): c for k, c in snapshot.customers_by_key.items()},
            price_tables={
                list_id: PriceTable(prices, max((len(p) for p in prices), default=0))
                for list_id, prices in snapshot.prices.items()
            },
        )

    def customer_for_key(self, auth_key: str) -> Customer | None:
        customer = self.by_key_digest.get(key_digest(auth_key))
        if customer is None or not hmac.compare_digest(
            customer.auth_key.encode(), auth_key.encode()
        ):
            return None
        return customer


def key_digest(auth_key: str) -> bytes:
    return hashlib.sha256(auth_key.encode("utf-8", "surrogatepass")).digest()


class ConfigCache:
    def __init__(self, source: SnapshotSource, *, poll_s: float = 0.5) -> None:
        self._source = source
        # A failed reload keeps serving the last good configuration.
        self._periodic = Periodic(self.refresh, poll_s, "config-poll")
        self._listeners: list[Callable[[PreparedConfig], None]] = []
        self.current = PreparedConfig(ConfigSnapshot(version=-1))

    def subscribe(self, listener: Callable[[PreparedConfig], None]) -> None:
        """Call ``listener`` (from the refreshing thread) with every new configuration."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Reload if the version moved (blocking: call from a thread or at start-up)."""
        version = self._source.config_version()
        if version == self.current.snapshot.version:
            return False
        snapshot = self._source.load_snapshot()
        self.current = PreparedConfig.build(snapshot, self._source.load_routing())
        for listener in self._listeners:
            listener(self.current)
        log.info("configuration loaded", extra={"config_version": self.current.snapshot.version})
        return True

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
