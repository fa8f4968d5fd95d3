"""What every admin handler shares: the store, the session signer, and time.

The admin listener is given the platform's store, typed as what the admin side may use of it
(``storage.interfaces.AdminStore``), so it needs nothing else from the platform; the platform
keeps owning and closes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from cloudsms.admin.auth import SessionSigner
from cloudsms.domain.money import format_amount
from cloudsms.domain.smpp_accounts import SmppSessions
from cloudsms.domain.timefmt import UIP_TZ
from cloudsms.exceptions import ConfigError
from cloudsms.storage.interfaces import AdminStore


@dataclass
class AdminContext:
    store: AdminStore
    signer: SessionSigner = field(default_factory=SessionSigner)
    #: Send the session cookies with ``Secure`` (set when the console is served over HTTPS).
    secure_cookies: bool = False
    #: Balance (micro-units) below which the dashboard and the metrics flag a customer.
    low_balance_micros: int = 10_000_000
    extra: dict[str, Any] = field(default_factory=dict)
    #: The live sessions of the customers' SMPP server when it runs in this process.
    smpp_sessions: SmppSessions | None = None
    #: The built-in SMSC simulator when it runs in this process (it originates inbound messages).
    simulator: MoOriginator | None = None


class MoOriginator(Protocol):
    """What originates an inbound message: the embedded simulator (``runtime.components``)."""

    def send_mo(self, source: str, destination: str, text: str) -> int: ...


# -- formatting shared by the API, the console and the portal ---------------------------------


def fmt_time(ms: int | None) -> str:
    """Epoch ms → ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC+8, the platform's wall clock (SPEC §1)."""
    if ms is None:
        return ""
    moment = dt.datetime.fromtimestamp(ms / 1000, UIP_TZ)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def fmt_money(micros: int | None, currency: str = "") -> str:
    if micros is None:
        return ""
    return f"{format_amount(micros)} {currency}".strip()


def parse_time(value: str | None, what: str = "time") -> int | None:
    """Epoch ms from ``1767225600000`` or ``2026-01-01 12:00[:00]`` / ``2026-01-01T12:00``.

    A date without an offset is UTC+8, like every time the platform shows; ``…Z`` or ``+hh:mm``
    are honoured. Empty means "not given".
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError as exc:
        raise ConfigError(
            f"{what} {value!r}: give epoch milliseconds or a date like 2026-01-01 12:00 (UTC+8)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UIP_TZ)
    return int(moment.timestamp() * 1000)
