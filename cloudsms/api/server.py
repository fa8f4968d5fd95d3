"""Serving the app with uvicorn (uvloop + httptools), plain HTTP or TLS with client certificates.

uvicorn does not put the peer certificate in the ASGI scope, so ``TlsHttpToolsProtocol`` reads it
from the TLS object once per connection and adds ``scope["extensions"]["tls"]
["client_cert_sha256"]`` to every request of that connection; the UIP endpoint uses it to bind a
key to a certificate.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError


class TlsHttpToolsProtocol(HttpToolsProtocol):
    _cert_sha256: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            if der:
                self._cert_sha256 = hashlib.sha256(der).hexdigest()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        scope: Any = self.scope
        scope["extensions"] = {"tls": {"client_cert_sha256": self._cert_sha256}}


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
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": TlsHttpToolsProtocol,
        "lifespan": "on",
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
        **tls,
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    if tls:
        _harden(config)
    return config


def _harden(config: uvicorn.Config) -> None:
    """TLS 1.2 or newer only."""
    config.load()
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2


def serve(settings: Settings) -> None:
    """Run the platform (and, unless disabled, its admin listener) until interrupted."""
    from cloudsms.logging import configure

    configure(settings.log_level, json=settings.log_json)
    if settings.admin_enabled:
        from cloudsms.admin.server import serve_with_admin

        serve_with_admin(
            settings,
            admin_host=settings.admin_host,
            admin_port=settings.admin_port,
            session_secret=bytes.fromhex(settings.admin_session_secret) or None,
            secure_cookies=settings.admin_secure_cookies,
        )
        return
    from cloudsms.api.app import create_app

    config = uvicorn_config(create_app(settings), settings)
    uvicorn.Server(config).run()
