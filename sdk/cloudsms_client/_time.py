"""The UIP wall-clock format: every TIME the platform writes is UTC+8, ``YYYY-MM-DD HH:MM:SS``.

Defined here once: the platform's ``cloudsms.domain.timefmt`` imports it, so the SDK needs
nothing of the platform and the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt

UIP_TZ = dt.timezone(dt.timedelta(hours=8), "UTC+8")
UIP_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_uip_time(moment: dt.datetime | None = None) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC+8; ``moment`` defaults to now (naive means UTC)."""
    if moment is None:
        moment = dt.datetime.now(dt.UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(UIP_TZ).strftime(UIP_FORMAT)


def parse_uip_time(text: str) -> dt.datetime:
    """Parse a UTC+8 `YYYY-MM-DD HH:MM:SS` into an aware UTC datetime; ValueError if malformed."""
    local = dt.datetime.strptime(text, UIP_FORMAT).replace(tzinfo=UIP_TZ)
    return local.astimezone(dt.UTC)
