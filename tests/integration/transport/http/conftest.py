"""The HTTP client's tests run twice: on asyncio's own loop and on uvloop.

``cloudsms serve`` runs on uvloop and the tests elsewhere on asyncio's loop; the two differ where
the client looks closely (how a TLS alert or a peer's close is reported to the protocol).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
