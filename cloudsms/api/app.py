"""The platform's ASGI application: declared routes and a lifespan that owns every component.

``create_app(settings)`` opens the store (running migrations), starts the group-commit writer, the
configuration cache and the backlog gauge, and shuts them down in reverse order — draining the
writer so no accepted packet is left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloudsms.api.backlog import BacklogGauge
from cloudsms.api.config_cache import ConfigCache
from cloudsms.api.uip import UipEndpoint, UipService
from cloudsms.config import Settings
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter


@dataclass
class Platform:
    """The running components; tests and other listeners reach them as ``app.state.platform``."""

    settings: Settings
    store: Store
    writer: GroupCommitWriter
    config: ConfigCache
    backlog: BacklogGauge
    service: UipService


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    store = store or Store.open(settings.database_url)
    writer = GroupCommitWriter(
        store,
        replay_window_ms=settings.replay_window_s * 1000,
        max_batch=settings.group_commit_max,
    )
    config = ConfigCache(store, poll_s=settings.config_poll_s)
    backlog = BacklogGauge(store)
    service = UipService(settings, config, writer, backlog)
    return Platform(settings, store, writer, config, backlog, service)


def create_app(settings: Settings, platform: Platform | None = None) -> Starlette:
    platform = platform or build_platform(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        platform.writer.start()
        await platform.config.start()
        await platform.backlog.start()
        try:
            yield
        finally:
            platform.service.draining = True
            await platform.backlog.stop()
            await platform.config.stop()
            await platform.writer.close()
            platform.store.close()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        ok = platform.config.current.snapshot.version >= 0 and not platform.service.draining
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    endpoint = UipEndpoint(platform.service, max_body_bytes=settings.max_body_bytes)
    app = Starlette(
        routes=[
            Route(settings.path, endpoint),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.platform = platform
    return app
