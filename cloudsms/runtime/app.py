"""``create_app(settings)``: the UIP listener's app over a platform whose lifespan it owns."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from cloudsms.api.app import create_uip_app
from cloudsms.config import Settings
from cloudsms.runtime.platform import Platform, build_platform


def create_app(settings: Settings, platform: Platform | None = None) -> Starlette:
    """The app serving ``platform`` (built from ``settings`` if not given).

    Its lifespan starts the platform's components and stops them in reverse; tests and the
    admin listener reach the platform as ``app.state.platform``.
    """
    platform = platform or build_platform(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        try:
            yield
        finally:
            await platform.stop()

    app = create_uip_app(
        platform.service if platform.serves_api else None,
        path=settings.path,
        max_body_bytes=settings.max_body_bytes,
        ready=platform.ready,
        lifespan=lifespan,
    )
    app.state.platform = platform
    return app
