"""Refused TLS handshakes as security events (they never reach the HTTP protocol).

A handshake the server refuses (unknown CA, expired or missing client certificate, old protocol
version) fails before ``connection_made``; it is seen only through the SSL context's message
callback, which ``cloudsms.runtime.uip_server`` installs. The alert the server sent is logged,
without the peer address: OpenSSL does not know it there.
"""

from __future__ import annotations

from typing import Any

from cloudsms.api import guard
from cloudsms.api.guard import EVENTS

#: TLS record content type of alerts, and the alert descriptions a refusing server sends
#: (RFC 8446 §6, RFC 5246 §7.2).
_TLS_ALERT = 21
_TLS_ALERTS = {
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    109: "missing_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


def tls_alert_logger(
    conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any, data: bytes
) -> None:
    """SSLContext message callback: log fatal alerts the server sends (refused handshakes).

    Called by OpenSSL for every TLS message, so it returns at once for anything but an alert.
    """
    if content_type != _TLS_ALERT or direction != "write":
        return
    if len(data) < 2 or data[0] != 2:  # warning-level alerts (close_notify) are not refusals
        return
    alert = _TLS_ALERTS.get(data[1], str(data[1]))
    EVENTS.emit(guard.TLS_REFUSED, "TLS handshake refused", alert=alert)
