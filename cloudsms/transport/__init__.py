"""asyncio around the sans-IO SMPP layer: the ESME client connector and the SMSC server base.

``SmppClient`` (client.py) is what the dispatcher uses to reach a carrier; ``SmppServer``
(server.py) is what the built-in simulator builds on. Both run on one ``asyncio.Protocol`` per
link (connection.py) with TCP_NODELAY and coalesced writes. :func:`run` runs a coroutine on
uvloop when it is installed. ``http_client.HttpClient`` is the other wire client here: the lean
HTTP/1.1 client (keep-alive pools per origin, TLS) the report pusher POSTs with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from cloudsms.transport.client import ClientStats, SmppClient
from cloudsms.transport.errors import (
    BindFailed,
    ConnectionLost,
    NotBound,
    SubmitError,
    SubmitNacked,
    SubmitTimeout,
    TransportError,
)
from cloudsms.transport.server import SmppServer, SmscConnection

__all__ = [
    "BindFailed",
    "ClientStats",
    "ConnectionLost",
    "NotBound",
    "SmppClient",
    "SmppServer",
    "SmscConnection",
    "SubmitError",
    "SubmitNacked",
    "SubmitTimeout",
    "TransportError",
    "run",
]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed (it roughly halves loop overhead)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every POSIX platform
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
