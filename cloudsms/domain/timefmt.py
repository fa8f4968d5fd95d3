"""Wall-clock formats of the UIP protocol: every TIME the platform writes is UTC+8 (SPEC §1).

The format is part of the wire vocabulary the customer SDK speaks too, so it is defined once,
in ``cloudsms_client._time`` (as the result codes are in ``cloudsms_client.codes``), and the
platform imports it from there.
"""

from __future__ import annotations

import datetime as dt
import time

from cloudsms_client._time import UIP_FORMAT, UIP_TZ, format_uip_time, parse_uip_time

__all__ = ["UIP_FORMAT", "UIP_TZ", "format_uip_time", "now_uip_time", "parse_uip_time", "utcnow"]

_last_second = -1
_last_text = ""


def now_uip_time() -> str:
    """``format_uip_time()`` of now, formatted once per second: every ANSWER carries a TIME,
    and formatting a datetime cost ~3 % of the API process's CPU at saturation."""
    global _last_second, _last_text
    second = int(time.time())
    if second != _last_second:
        _last_text = format_uip_time(dt.datetime.fromtimestamp(second, dt.UTC))
        _last_second = second
    return _last_text


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
