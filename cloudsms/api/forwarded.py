"""Which address a request comes from: the peer, unless it is a proxy the operator trusts.

Strategy (issue 12 item 1, docs/security.md §10): the client address decides whitelists, the
AUTH_KEY guessing throttle and what the security log names, so a client must not be able to
choose it. ``X-Forwarded-For`` is a list anyone can write; only the entries appended by proxies
we trust are true. Hence:

* with no trusted proxies (``trusted_proxies = ""``, the default) the TCP peer address is the
  client address and every forwarding header is ignored;
* when the peer is a trusted proxy, the header's entries (all ``X-Forwarded-For`` lines, in
  order) are read from the right: each trusted entry is another proxy of ours, and the first
  untrusted one is the client — it was appended by a proxy we trust, whatever the client wrote
  to the left of it;
* an entry that is not an IP address stops the walk at the trusted hop that passed it on (a
  proxy forwarding garbage is misconfigured; fail closed on an address the operator knows);
* every entry trusted: the leftmost one.

``X-Forwarded-Proto``, ``Forwarded`` and ``X-Real-IP`` are never read. The UIP listener's
protocol (``cloudsms.api.http_protocol``) calls :meth:`TrustedProxies.client_address` directly;
on the admin listener uvicorn's own proxy header handling, which trusts 127.0.0.1 by default, is
switched off (``proxy_headers=False``) and :class:`ClientAddress` applies this rule instead.

>>> proxies = TrustedProxies.parse("10.0.0.0/8")
>>> proxies.client_address("10.1.2.3", [b"203.0.113.9, 198.51.100.7, 10.9.9.9"])
'198.51.100.7'
>>> proxies.client_address("192.0.2.1", [b"198.51.100.7"])  # not from a trusted proxy
'192.0.2.1'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from cloudsms.exceptions import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The one forwarding header read (lower case, as ASGI scopes carry names).
HEADER = b"x-forwarded-for"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Networks of the reverse proxies whose ``X-Forwarded-For`` entries are believed."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From the ``trusted_proxies`` setting: addresses or CIDRs, comma or space separated.

        >>> TrustedProxies.parse("127.0.0.1, 10.0.0.0/8 ::1").networks[1]
        IPv4Network('10.0.0.0/8')
        """
        networks: list[Network] = []
        for item in text.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ConfigError(
                    f"trusted_proxies: {item!r} is not an IP address or network"
                ) from exc
        return cls(tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: Iterable[bytes]) -> str | None:
        """The client's address: ``peer``, or what trusted proxies say the client was.

        ``forwarded_for`` holds the values of every ``X-Forwarded-For`` line, in order.
        """
        current = _address(peer) if peer is not None else None
        if current is None or not self.trusts(current):
            return peer
        entries = [e for value in forwarded_for for e in value.decode("latin-1").split(",")]
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                break  # garbage from a trusted hop: stop at that hop
            current = address
            if not self.trusts(address):
                break
        return str(current)


def _address(text: str) -> Address | None:
    """An IP address from a header entry or a peer: ``a.b.c.d``, ``a.b.c.d:port``, ``[v6]:port``,
    ``v6``; IPv4-mapped IPv6 as IPv4. None when it is none of those."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    """ASGI middleware: ``scope["client"]`` becomes the address :class:`TrustedProxies` finds.

    Only installed when some proxy is trusted; the port of a forwarded client is unknown (0).
    """

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client: Any = scope.get("client")
            peer = client[0] if client else None
            values = [value for name, value in scope["headers"] if name == HEADER]
            if values:
                address = self.proxies.client_address(peer, values)
                if address != peer:
                    scope["client"] = (address, 0)
        await self.app(scope, receive, send)


def with_client_address(app: Any, trusted_proxies: str) -> Any:
    """``app`` behind :class:`ClientAddress` when ``trusted_proxies`` names any; else ``app``."""
    proxies = TrustedProxies.parse(trusted_proxies)
    return ClientAddress(app, proxies) if proxies else app
