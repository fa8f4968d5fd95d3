"""The trusted-proxy rule as a pure function (cloudsms.api.forwarded).

The same rule over real sockets: tests/integration/test_forwarded_for.py.
"""

from __future__ import annotations

import doctest

import pytest

from cloudsms.api import forwarded
from cloudsms.api.forwarded import TrustedProxies
from cloudsms.exceptions import ConfigError

PROXIES = TrustedProxies.parse("10.0.0.0/8, 2001:db8::/32")


def test_doctests() -> None:
    result = doctest.testmod(forwarded)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # Not a trusted peer: the header is never read.
        ("192.0.2.1", [b"10.1.1.1"], "192.0.2.1"),
        ("192.0.2.1", [], "192.0.2.1"),
        # A trusted peer without the header is the client itself.
        ("10.0.0.1", [], "10.0.0.1"),
        # The rightmost untrusted entry; anything left of it is the client's own writing.
        ("10.0.0.1", [b"203.0.113.5"], "203.0.113.5"),
        ("10.0.0.1", [b"1.1.1.1, 203.0.113.5, 10.0.0.7"], "203.0.113.5"),
        ("10.0.0.1", [b"1.1.1.1", b"203.0.113.5"], "203.0.113.5"),
        # Ports and brackets are stripped; IPv4-mapped IPv6 is IPv4.
        ("10.0.0.1", [b"203.0.113.5:4711"], "203.0.113.5"),
        ("10.0.0.1", [b"[2001:db9::5]:443"], "2001:db9::5"),
        ("10.0.0.1", [b"::ffff:203.0.113.5"], "203.0.113.5"),
        ("::ffff:10.0.0.1", [b"203.0.113.5"], "203.0.113.5"),
        ("2001:db8::1", [b"2001:db9::5"], "2001:db9::5"),
        # Garbage stops the walk at the trusted hop that passed it on.
        ("10.0.0.1", [b"203.0.113.5, unknown"], "10.0.0.1"),
        ("10.0.0.1", [b"203.0.113.5, garbage, 10.0.0.9"], "10.0.0.9"),
        ("10.0.0.1", [b""], "10.0.0.1"),
        # Every hop trusted: the farthest one.
        ("10.0.0.1", [b"10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        # No peer address (a Unix socket): nothing to go by.
        (None, [b"203.0.113.5"], None),
    ],
)
def test_client_address(peer: str | None, header: list[bytes], client: str | None) -> None:
    assert PROXIES.client_address(peer, header) == client


def test_nobody_trusted_means_the_peer() -> None:
    assert not TrustedProxies.parse("")
    assert TrustedProxies.parse(" ").client_address("127.0.0.1", [b"10.0.0.1"]) == "127.0.0.1"


@pytest.mark.parametrize("text", ["proxy.example", "10.0.0.0/33", "127.0.0.1;10.0.0.1"])
def test_bad_setting_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        TrustedProxies.parse(text)
