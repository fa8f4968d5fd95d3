"""A blocking refresh run in a worker thread every few seconds, owned by an asyncio task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("cloudsms.periodic")


class Periodic:
    """Run ``job`` once at ``start()`` (errors propagate), then every ``interval_s`` seconds
    (errors are logged and the previous state kept) until ``stop()``."""

    def __init__(self, job: Callable[[], Any], interval_s: float, name: str) -> None:
        self._job = job
        self._interval_s = interval_s
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._job)
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await asyncio.to_thread(self._job)
            except Exception:
                log.exception("%s failed; keeping the previous state", self._name)
