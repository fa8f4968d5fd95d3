"""The UIP listener's ASGI application: the UIP route, ``/health`` and ``/ready``.

Every process serves this app on its port (a worker too: ``/health`` and ``/ready`` tell an
orchestrator it is up); a process that serves the API adds the UIP route. The components behind
it are started and stopped by the lifespan the composition root passes in (``cloudsms.runtime``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from cloudsms.api.errors import HANDLERS
from cloudsms.api.uip import UipEndpoint, UipService


def create_uip_app(
    service: UipService | None,
    *,
    path: str,
    max_body_bytes: int,
    ready: Callable[[], bool],
    lifespan: Callable[[Starlette], Any],
) -> Starlette:
    """The app: the UIP route at ``path`` when ``service`` is given, and the health checks.

    ``ready`` answers ``/ready`` (configuration loaded, not draining).
    """

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readiness(request: Request) -> JSONResponse:
        ok = ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", readiness, methods=["GET"]),
    ]
    if service is not None:
        endpoint = UipEndpoint(service, max_body_bytes=max_body_bytes)
        routes.insert(0, Route(path, endpoint))
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=dict(HANDLERS))
