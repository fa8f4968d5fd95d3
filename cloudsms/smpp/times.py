"""SMPP 3.4 time fields (§7.1.1): schedule_delivery_time and validity_period.

Absolute: ``YYMMDDhhmmsstnnp`` (t tenths, nn quarter-hours from UTC, p ``+`` or ``-``);
relative: ``YYMMDDhhmmss000R`` (an interval from now, months as 30 days and years as 365,
which is how SMSCs commonly read it). An empty field means "none".
"""

from __future__ import annotations

import datetime as dt


class SmppTimeError(ValueError):
    """The field is not an SMPP time."""


def format_smpp_time(moment: dt.datetime) -> str:
    """An aware moment as an absolute SMPP time in UTC (``YYMMDDhhmmss000+``), to the second.

    >>> format_smpp_time(dt.datetime(2026, 12, 6, 4, 30, 5, 900_000, tzinfo=dt.UTC))
    '261206043005000+'
    """
    return moment.astimezone(dt.UTC).strftime("%y%m%d%H%M%S") + "000+"


def parse_smpp_time(text: str, now: dt.datetime) -> dt.datetime | None:
    """The moment ``text`` names (aware UTC), None when empty; SmppTimeError when malformed.

    >>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> parse_smpp_time("260101120000004+", now).isoformat()
    '2026-01-01T11:00:00+00:00'
    >>> parse_smpp_time("000000010000000R", now).isoformat()
    '2026-01-01T01:00:00+00:00'
    """
    if not text:
        return None
    if len(text) != 16 or not text[:15].isdigit() or text[15] not in "+-R":
        raise SmppTimeError(f"{text!r} is not YYMMDDhhmmsstnnp (SMPP 3.4 §7.1.1)")
    yy, mo, dd, hh, mi, ss = (int(text[i : i + 2]) for i in range(0, 12, 2))
    if text[15] == "R":
        span = dt.timedelta(days=yy * 365 + mo * 30 + dd, hours=hh, minutes=mi, seconds=ss)
        return now + span
    tenths, quarters = int(text[12]), int(text[13:15])
    if quarters > 48:
        raise SmppTimeError(f"{text!r}: the UTC offset is over 48 quarter-hours")
    try:
        local = dt.datetime(2000 + yy, mo, dd, hh, mi, ss, tenths * 100_000)
    except ValueError as exc:
        raise SmppTimeError(f"{text!r} is not a valid date and time") from exc
    offset = dt.timedelta(minutes=15 * quarters) * (1 if text[15] == "+" else -1)
    return (local - offset).replace(tzinfo=dt.UTC)
