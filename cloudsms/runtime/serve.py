"""Serving a platform: the UIP listener and the admin listener side by side, in one process.

``serve(settings)`` runs the UIP listener (``cloudsms.runtime.uip_server.UipServer``: the UIP
endpoint, or only the health checks, over the platform it starts and stops) and, unless
disabled, the admin listener (REST API, console, portal, metrics; uvicorn + Starlette) on one
event loop. The admin listener starts once the platform is up and uses its store; shutdown is
the reverse: the admin listener stops first, then the platform drains and closes the store.

Both listeners take the client address by the same rule (``cloudsms.api.forwarded``): the peer,
unless it is one of ``trusted_proxies``; uvicorn's own proxy header handling is off. The UIP
listener runs the platform's own HTTP protocol (``cloudsms.api.http_protocol``) with its limits
for hostile clients and, with a certificate, TLS 1.2 or newer with refused handshakes logged as
security events.

The admin listener binds 127.0.0.1 by default: reach it through an SSH tunnel or a reverse proxy
that terminates TLS (and then set ``admin_secure_cookies``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn

from cloudsms.admin.app import create_admin_app
from cloudsms.api.forwarded import with_client_address
from cloudsms.config import Settings
from cloudsms.runtime.collector import tune_for_serving
from cloudsms.runtime.components import Component
from cloudsms.runtime.layout import (
    WorkerProcess,
    follow_parent,
    process_count,
    wake_listener,
    worker_environment,
)
from cloudsms.runtime.listening import NamedServer
from cloudsms.runtime.platform import Platform
from cloudsms.runtime.uip_server import UipServer

log = logging.getLogger(__name__)

DEFAULT_ADMIN_HOST = "127.0.0.1"
DEFAULT_ADMIN_PORT = 1816

#: What the admin listener serves, as its "listening on" log line says.
ADMIN_WHAT = "admin listener: console /console/, portal /portal/, API /api/v1/, /metrics"


def serve(settings: Settings, *, config_file: str | None = None, fd: int | None = None) -> None:
    """Run the platform (and, unless disabled, its admin listener) until interrupted.

    Role ``all`` runs as one process or as an API process with its worker as a child, by the
    ``processes`` setting (``cloudsms.runtime.layout``); ``config_file`` is passed to the child.
    ``fd``: the UIP listener's socket, bound already (``cloudsms serve --reuse-port``).
    """
    from cloudsms.logging import configure

    configure(settings.log_level, json=settings.log_json)
    companions: list[Component] = []
    if process_count(settings) == 2:
        companions.append(WorkerProcess(worker_environment(settings, config_file)))
        settings = dataclasses.replace(settings, role="api")
        log.info("role all as two processes: this one serves the endpoints, a worker process"
                 " the carriers and reports (processes=1 for one)")  # fmt: skip
    else:
        follow_parent()
    if settings.role != "api":
        # The store thread re-takes the GIL after every SQLite call; with the default 5 ms
        # switch interval it waits behind the busy event loop each time, and holds SQLite's
        # write lock meanwhile. 0.5 ms: ~5 % more messages/s in bench/pipeline.py.
        sys.setswitchinterval(0.0005)
    tune_for_serving()  # after the imports: the collector need not walk them again
    run_listeners(settings, fd=fd, companions=companions)


def run_listeners(
    settings: Settings, *, fd: int | None = None, companions: Sequence[Component] = ()
) -> None:
    """The UIP listener and (unless disabled) the admin listener in the foreground.

    ``fd``: the UIP listener's socket, bound already (``cloudsms serve --reuse-port``).
    ``companions``: started once the platform is up (the two-process layout's worker).
    """
    platform_server = UipServer(settings, fd=fd)
    platform = platform_server.platform
    platform.companions.extend(companions)
    for companion in companions:
        if isinstance(companion, WorkerProcess):  # accepted packets wake the worker at once
            platform.service.on_accepted = chained(platform.service.on_accepted, companion.wake)
            if platform.dispatcher is None:  # and are claimed for it as they are accepted
                platform.writer.intake = companion
    waking = wake_listener(platform.dispatcher)
    if waking is not None:
        platform.companions.append(waking)
    if not settings.admin_enabled:
        platform_server.run()
        return
    admin = admin_app(settings, platform_server.platform)
    listener = admin_server(
        admin_uvicorn_config(
            admin,
            host=settings.admin_host,
            port=settings.admin_port,
            trusted_proxies=settings.trusted_proxies,
        )
    )
    try:
        import uvloop

        uvloop.run(run_with_admin(platform_server, listener))
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(run_with_admin(platform_server, listener))


def chained(first: Callable[[], None] | None, then: Callable[[], None]) -> Callable[[], None]:
    """``then`` after ``first`` (when there is one)."""
    if first is None:
        return then

    def both() -> None:
        first()
        then()

    return both


def admin_app(settings: Settings, platform: Platform) -> Any:
    """The admin app over the platform's store (its engine is shared, not copied)."""
    return create_admin_app(
        platform.store,
        session_secret=bytes.fromhex(settings.admin_session_secret) or None,
        secure_cookies=settings.admin_secure_cookies,
        smpp_sessions=platform.smpp,
        simulator=platform.simulator,
    )


def admin_server(config: Any) -> uvicorn.Server:
    """The admin listener's uvicorn server, logging its URL when it listens and stops."""
    return NamedServer(config, ADMIN_WHAT)


async def run_with_admin(
    platform_server: UipServer, admin_server: uvicorn.Server, *, start_timeout_s: float = 60
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


def admin_uvicorn_config(
    app: Any, *, host: str, port: int, log_level: str | None = None, trusted_proxies: str = ""
) -> Any:
    """uvicorn settings for the admin app (no lifespan: the platform's owns the store).

    The client address follows the UIP listener's rule (see the module docstring).
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
