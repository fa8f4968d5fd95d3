"""Admin tokens, signed session cookies and CSRF tokens.

Tokens: ``csa_`` + 43 URL-safe characters (256 random bits). Only their SHA-256 is stored, so a
copy of the database does not give access; a token is shown once, by ``cloudsms admin token
create``. The REST API takes one as ``Authorization: Bearer <token>``; the console takes one at
its login form and keeps a session cookie instead.

Session cookies are ``base64url(JSON payload) "." base64url(HMAC-SHA256)``, signed with a secret
that lives in the process (or is configured, so that sessions survive restarts). They carry the
token's id, not the token, and every request checks the token is still enabled, so revoking a
token ends its console sessions at once. Each session has its own random CSRF token, which every
console form posts back in a hidden field; the cookie is also ``SameSite=Strict`` and
``HttpOnly``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson

TOKEN_PREFIX = "csa_"
#: Console and portal sessions last this long without a new login.
SESSION_MAX_AGE_S = 12 * 3600

PrincipalKind = Literal["operator", "customer"]


def new_token() -> str:
    """A new admin token (shown once; store only ``digest(token)``)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 (hex) of a token or AUTH_KEY: what the store and the sessions keep."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: an operator (by admin token) or a customer (portal, by AUTH_KEY)."""

    kind: PrincipalKind
    #: Token name, or the customer's name.
    name: str
    #: "admin", "readonly", or "customer".
    role: str
    #: admin_tokens.id, or customers.id.
    id: int

    @property
    def can_change(self) -> bool:
        return self.kind == "operator" and self.role == "admin"

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"token:{self.name}"


class SessionSigner:
    """Signs and checks session cookies (see the module docstring)."""

    def __init__(self, secret: bytes | None = None, *, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._key = secret or secrets.token_bytes(32)
        self.max_age_s = max_age_s

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def dumps(self, data: dict[str, Any]) -> str:
        payload = orjson.dumps({**data, "iat": int(time.time())})
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def loads(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a valid, unexpired cookie; None for anything else."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        try:
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(mac), self._mac(payload)):
                return None
            data = orjson.loads(payload)
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("iat"), int):
            return None
        if time.time() - data["iat"] > self.max_age_s:
            return None
        return data


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(expected: object, given: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
