"""The admin listener's ASGI app: REST API, OpenAPI, console, portal, metrics, static files.

    /api/v1/…        REST API (Bearer token; cloudsms.admin.operations)
    /openapi.json    its OpenAPI 3.1 description
    /console/…       operator console (login with an admin token)
    /portal/…        customer self-service (login with an AUTH_KEY)
    /metrics         Prometheus exposition (cloudsms.metrics)
    /health          liveness
    /static/…        the console's own CSS and script
    /vendor/chart.js Chart.js, from the directory ``make assets`` installs it into

The app has no lifespan of its own: it runs beside the platform (``cloudsms.runtime.serve``) and
uses the platform's store itself; the platform opens and closes it.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudsms import metrics
from cloudsms.admin.api import api_routes
from cloudsms.admin.auth import SessionSigner
from cloudsms.admin.console import console_routes
from cloudsms.admin.context import AdminContext, MoOriginator
from cloudsms.admin.errors import handle_exception
from cloudsms.admin.openapi import build_openapi
from cloudsms.admin.operations import OPERATIONS
from cloudsms.admin.pages import PACKAGE_DIR, chart_js_path
from cloudsms.admin.portal import portal_routes
from cloudsms.domain.smpp_accounts import SmppSessions
from cloudsms.storage.interfaces import AdminStore

SECURITY_HEADERS = {
    # Pages load only what the platform serves: no CDN, no inline script.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def create_admin_app(
    store: AdminStore,
    *,
    session_secret: bytes | None = None,
    secure_cookies: bool = False,
    low_balance_micros: int = 10_000_000,
    smpp_sessions: SmppSessions | None = None,
    simulator: MoOriginator | None = None,
) -> Starlette:
    """The admin app over ``store`` (the platform's: its engine is shared, not copied).

    ``session_secret`` signs console and portal sessions; without one, a random secret is made
    and sessions end when the process does.
    """
    ctx = AdminContext(
        store=store,
        signer=SessionSigner(session_secret),
        secure_cookies=secure_cookies,
        low_balance_micros=low_balance_micros,
        smpp_sessions=smpp_sessions,
        simulator=simulator,
    )
    openapi = build_openapi(OPERATIONS)
    registry = metrics.registry_with(
        metrics.StoreCollector(lambda: ctx.store, low_balance_micros=low_balance_micros)
    )

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = await asyncio.to_thread(metrics.exposition, registry)
        return Response(body, media_type=content_type)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def chart_js(request: Request) -> Response:
        path = chart_js_path()
        if path is None:
            raise HTTPException(404, "Chart.js is not installed: run `make assets`")
        return FileResponse(path, media_type="text/javascript")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def home(request: Request) -> Response:
        return RedirectResponse("/console/", 307)

    routes: list[BaseRoute] = [
        Route("/", home),
        Route("/openapi.json", openapi_json),
        Route("/metrics", metrics_endpoint),
        Route("/health", health),
        Route("/favicon.ico", favicon),
        Route("/vendor/chart.js", chart_js),
        Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
        *api_routes(ctx, OPERATIONS),
        *console_routes(),
        *portal_routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: handle_exception, Exception: handle_exception},
    )
    app.state.admin = ctx
    return app


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every answer that does not set them itself (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in present
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
