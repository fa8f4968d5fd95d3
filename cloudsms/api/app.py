"""The platform's ASGI application: declared routes and a lifespan that owns every component.

``create_app(settings)`` opens the store (running migrations) and starts, by ``settings.role``:

* ``api``: the group-commit writer, the configuration cache, the backlog gauge and the UIP route;
* ``worker``: the configuration cache, the dispatcher (SMPP links, routing, receipts);
* ``all`` (the default): both, in one process.

Shutdown runs in reverse order: the API stops taking packets (Busy) and drains the writer before
the dispatcher lets its links go, so no accepted packet is left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from cloudsms.api.backlog import BacklogGauge
from cloudsms.api.config_cache import ConfigCache
from cloudsms.api.uip import UipEndpoint, UipService
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter
from cloudsms.workers.dispatcher import Dispatcher

ROLES = ("all", "api", "worker")


@dataclass
class Platform:
    """The running components; tests and other listeners reach them as ``app.state.platform``."""

    settings: Settings
    store: Store
    writer: GroupCommitWriter
    config: ConfigCache
    backlog: BacklogGauge
    service: UipService
    dispatcher: Dispatcher | None

    @property
    def serves_api(self) -> bool:
        return self.settings.role in ("all", "api")


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    if settings.role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    store = store or Store.open(settings.database_url)
    writer = GroupCommitWriter(
        store,
        replay_window_ms=settings.replay_window_s * 1000,
        max_batch=settings.group_commit_max,
    )
    config = ConfigCache(store, poll_s=settings.config_poll_s)
    backlog = BacklogGauge(store)
    dispatcher = None
    if settings.role in ("all", "worker"):
        dispatcher = Dispatcher(store, config, batch=settings.dispatch_batch)
    service = UipService(
        settings,
        config,
        writer,
        backlog,
        store=store,
        on_accepted=dispatcher.wake if dispatcher is not None else None,
    )
    return Platform(settings, store, writer, config, backlog, service, dispatcher)


def create_app(settings: Settings, platform: Platform | None = None) -> Starlette:
    platform = platform or build_platform(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if platform.serves_api:
            platform.writer.start()
        await platform.config.start()
        if platform.serves_api:
            await platform.backlog.start()
        if platform.dispatcher is not None:
            await platform.dispatcher.start()
        try:
            yield
        finally:
            platform.service.draining = True
            if platform.serves_api:
                await platform.backlog.stop()
                await platform.writer.close()
            if platform.dispatcher is not None:
                await platform.dispatcher.stop()
            await platform.config.stop()
            platform.store.close()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        ok = platform.config.current.snapshot.version >= 0 and not platform.service.draining
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    if platform.serves_api:
        endpoint = UipEndpoint(platform.service, max_body_bytes=settings.max_body_bytes)
        routes.insert(0, Route(settings.path, endpoint))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.platform = platform
    return app
