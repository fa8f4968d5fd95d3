"""Serving the admin app on its own listener, beside the platform, in one process.

``serve_with_admin`` runs two uvicorn servers on one event loop: the platform's (UIP endpoint,
lifespan that owns the store, the writer and the dispatcher) and the admin listener (REST API,
console, portal, metrics), which starts once the platform is up and uses its store. Shutdown is
the reverse: the admin listener stops first, then the platform drains and closes the store.

The admin listener binds 127.0.0.1 by default: reach it through an SSH tunnel or a reverse proxy
that terminates TLS (and then pass ``secure_cookies=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn

from cloudsms.admin.app import create_admin_app
from cloudsms.api.forwarded import with_client_address
from cloudsms.config import Settings

DEFAULT_ADMIN_HOST = "127.0.0.1"
DEFAULT_ADMIN_PORT = 1816


#: What the admin listener serves, as its "listening on" log line says.
ADMIN_WHAT = "admin listener: console /console/, portal /portal/, API /api/v1/, /metrics"


def admin_uvicorn_config(
    app: Any, *, host: str, port: int, log_level: str | None = None, trusted_proxies: str = ""
) -> Any:
    """uvicorn settings for the admin app (no lifespan: the platform's owns the store).

    The client address follows the UIP listener's rule (``cloudsms.api.forwarded``): the peer,
    unless it is one of ``trusted_proxies``; uvicorn's own proxy header handling is off.
    ``log_level`` None leaves uvicorn's loggers as ``cloudsms.logging.configure`` set them.
    """
    return uvicorn.Config(
        with_client_address(app, trusted_proxies),
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level=log_level,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )


def admin_server(config: Any) -> uvicorn.Server:
    """The admin listener's uvicorn server, logging its URL when it listens and stops."""
    from cloudsms.api.listening import NamedServer

    return NamedServer(config, ADMIN_WHAT)


async def run_with_admin(
    platform_server: uvicorn.Server, admin_server: uvicorn.Server, *, start_timeout_s: float = 60
) -> None:
    """Run both servers until either stops; the admin one starts after the platform is up."""
    main = asyncio.create_task(platform_server.serve(), name="platform")
    waited = 0.0
    while not platform_server.started and not main.done() and waited < start_timeout_s:
        await asyncio.sleep(0.05)
        waited += 0.05
    if main.done() or not platform_server.started:
        platform_server.should_exit = True
        await main
        return
    side = asyncio.create_task(admin_server.serve(), name="admin")
    await asyncio.wait({main, side}, return_when=asyncio.FIRST_COMPLETED)
    # Whichever stopped (a signal reaches one of them), stop the admin listener first.
    admin_server.should_exit = True
    with contextlib.suppress(Exception):
        await side
    platform_server.should_exit = True
    await main


def serve_with_admin(
    settings: Settings,
    *,
    admin_host: str = DEFAULT_ADMIN_HOST,
    admin_port: int = DEFAULT_ADMIN_PORT,
    session_secret: bytes | None = None,
    secure_cookies: bool = False,
) -> None:
    """The platform and its admin listener in the foreground until interrupted."""
    from cloudsms.api.app import create_app
    from cloudsms.api.server import uip_server, uvicorn_config

    app = create_app(settings)
    platform = app.state.platform
    admin = create_admin_app(
        platform.store,
        session_secret=session_secret,
        secure_cookies=secure_cookies,
        platform=platform,
    )
    platform_server = uip_server(uvicorn_config(app, settings), settings)
    listener = admin_server(
        admin_uvicorn_config(
            admin, host=admin_host, port=admin_port, trusted_proxies=settings.trusted_proxies
        )
    )
    try:
        import uvloop

        uvloop.run(run_with_admin(platform_server, listener))
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(run_with_admin(platform_server, listener))
