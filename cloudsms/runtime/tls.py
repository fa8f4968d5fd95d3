"""The listeners' TLS context: the UIP endpoint's HTTPS and the customers' SMPP over TLS.

One certificate (``tls_cert`` / ``tls_key``) and one client CA (``tls_client_ca``) serve both.
"""

from __future__ import annotations

import contextlib
import ssl

from cloudsms.api.tls_alerts import tls_alert_logger
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS 1.2 or newer with the configured certificate (and client CA), or None without one.

    Refused handshakes are logged as security events. Loading the files here makes a wrong one
    a ConfigError that names the setting and the file, instead of OpenSSL's nameless error.
    """
    if not settings.tls_cert:
        if settings.tls_client_ca:
            raise ConfigError("tls_client_ca needs tls_cert and tls_key")
        return None
    if not settings.tls_key:
        raise ConfigError("tls_cert is set but tls_key is not")
    for setting in ("tls_cert", "tls_key", "tls_client_ca"):
        path = getattr(settings, setting)
        try:
            with open(path, "rb") if path else contextlib.nullcontext():
                pass
        except OSError as exc:
            raise ConfigError(f"{setting} {path}: {exc.strerror or exc}") from exc
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        if settings.tls_client_ca:
            context.load_verify_locations(settings.tls_client_ca)
            context.verify_mode = (
                ssl.CERT_REQUIRED if settings.tls_client_required else ssl.CERT_OPTIONAL
            )
    except (OSError, ssl.SSLError) as exc:
        files = f"tls_cert {settings.tls_cert}, tls_key {settings.tls_key}" + (
            f", tls_client_ca {settings.tls_client_ca}" if settings.tls_client_ca else ""
        )
        reason = str(getattr(exc, "reason", None) or exc)
        if "PEM lib" in reason:  # load_cert_chain's only word for any unusable file
            reason = "not a PEM certificate with its private key, or the key does not match"
        raise ConfigError(f"TLS files ({files}): {reason}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # _msg_callback is CPython's (private, stable since 3.8) hook on OpenSSL's message
    # callback: the only place a handshake refused before connection_made can be seen.
    context._msg_callback = tls_alert_logger  # type: ignore[attr-defined]
    return context
