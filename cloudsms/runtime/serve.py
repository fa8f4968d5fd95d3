"""Serving a platform: the UIP listener and the admin listener side by side, in one process.

``serve(settings)`` runs the UIP listener (``create_app``: the UIP endpoint, or only the health
checks, and the lifespan that starts and stops the platform) and, unless disabled, the admin
listener (REST API, console, portal, metrics) on one event loop. The admin listener starts once
the platform is up and uses its store; shutdown is the reverse: the admin listener stops first,
then the platform drains and closes the store.

Both listeners take the client address by the same rule (``cloudsms.api.forwarded``): the peer,
unless it is one of ``trusted_proxies``; uvicorn's own proxy header handling is off. The UIP
listener runs the hostile-client protocol (``cloudsms.api.protocol``) and, with a certificate,
TLS 1.2 or newer with refused handshakes logged as security events.

The admin listener binds 127.0.0.1 by default: reach it through an SSH tunnel or a reverse proxy
that terminates TLS (and then set ``admin_secure_cookies``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from typing import Any

import uvicorn

from cloudsms.admin.app import create_admin_app
from cloudsms.api.forwarded import with_client_address
from cloudsms.api.protocol import HttpLimits, protocol_class, tls_alert_logger
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError
from cloudsms.runtime.app import create_app
from cloudsms.runtime.listening import NamedServer
from cloudsms.runtime.platform import Platform

DEFAULT_ADMIN_HOST = "127.0.0.1"
DEFAULT_ADMIN_PORT = 1816

#: What the admin listener serves, as its "listening on" log line says.
ADMIN_WHAT = "admin listener: console /console/, portal /portal/, API /api/v1/, /metrics"


def serve(settings: Settings) -> None:
    """Run the platform (and, unless disabled, its admin listener) until interrupted."""
    from cloudsms.logging import configure

    configure(settings.log_level, json=settings.log_json)
    if settings.role != "api":
        # The store thread re-takes the GIL after every SQLite call; with the default 5 ms
        # switch interval it waits behind the busy event loop each time, and holds SQLite's
        # write lock meanwhile. 0.5 ms: ~5 % more messages/s in bench/pipeline.py.
        sys.setswitchinterval(0.0005)
    run_listeners(settings)


def run_listeners(settings: Settings, **uvicorn_overrides: Any) -> None:
    """The UIP listener and (unless disabled) the admin listener in the foreground.

    ``uvicorn_overrides`` go to the UIP listener's config (``fd=``: a socket bound already, as
    ``cloudsms serve --reuse-port`` does).
    """
    app = create_app(settings)
    if not settings.admin_enabled:
        config = uvicorn_config(app, settings, **uvicorn_overrides)
        uip_server(config, settings).run()
        return
    admin = admin_app(settings, app.state.platform)
    platform_server = uip_server(uvicorn_config(app, settings, **uvicorn_overrides), settings)
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


def admin_app(settings: Settings, platform: Platform) -> Any:
    """The admin app over the platform's store (its engine is shared, not copied)."""
    return create_admin_app(
        platform.store,
        session_secret=bytes.fromhex(settings.admin_session_secret) or None,
        secure_cookies=settings.admin_secure_cookies,
    )


def uip_server(config: uvicorn.Config, settings: Settings) -> uvicorn.Server:
    """The UIP endpoint's uvicorn server, logging its URL when it listens and when it stops."""
    return NamedServer(config, "UIP endpoint", settings.path)


def admin_server(config: Any) -> uvicorn.Server:
    """The admin listener's uvicorn server, logging its URL when it listens and stops."""
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


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """A uvicorn Config for ``app`` from the settings (TLS when a certificate is configured)."""
    tls: dict[str, Any] = {}
    if settings.tls_cert:
        if not settings.tls_key:
            raise ConfigError("tls_cert is set but tls_key is not")
        tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
        if settings.tls_client_ca:
            tls["ssl_ca_certs"] = settings.tls_client_ca
            tls["ssl_cert_reqs"] = (
                ssl.CERT_REQUIRED if settings.tls_client_required else ssl.CERT_OPTIONAL
            )
    elif settings.tls_client_ca:
        raise ConfigError("tls_client_ca needs tls_cert and tls_key")
    app = with_client_address(app, settings.trusted_proxies)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": protocol_class(HttpLimits.from_settings(settings)),
        "lifespan": "on",
        "access_log": False,
        # uvicorn trusts X-Forwarded-* from 127.0.0.1 by default; cloudsms.api.forwarded decides.
        "proxy_headers": False,
        # Logging is cloudsms.logging's (configure()); uvicorn's dictConfig would replace it.
        "log_config": None,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        **tls,
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    if tls:
        _harden(config, settings)
    return config


def _harden(config: uvicorn.Config, settings: Settings) -> None:
    """TLS 1.2 or newer only; refused handshakes logged as security events.

    Loading the files here (not in uvicorn's server task) makes a wrong one a ConfigError that
    names the setting and the file, instead of OpenSSL's nameless error in a traceback.
    """
    for setting in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(settings, setting)
        try:
            with open(path, "rb") if path else contextlib.nullcontext():
                pass
        except OSError as exc:
            raise ConfigError(f"{setting} {path}: {exc.strerror or exc}") from exc
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        files = f"tls_cert {settings.tls_cert}, tls_key {settings.tls_key}" + (
            f", tls_client_ca {settings.tls_client_ca}" if settings.tls_client_ca else ""
        )
        reason = str(getattr(exc, "reason", None) or exc)
        if "PEM lib" in reason:  # load_cert_chain's only word for any unusable file
            reason = "not a PEM certificate with its private key, or the key does not match"
        raise ConfigError(f"TLS files ({files}): {reason}") from exc
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    # _msg_callback is CPython's (private, stable since 3.8) hook on OpenSSL's message
    # callback: the only place a handshake refused before connection_made can be seen.
    config.ssl._msg_callback = tls_alert_logger  # type: ignore[attr-defined]


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
