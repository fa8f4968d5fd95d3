"""Wall-clock formats of the UIP protocol: every TIME the platform writes is UTC+8 (SPEC §1).

The format is part of the wire vocabulary the customer SDK speaks too, so it is defined once,
in ``cloudsms_client._time`` (as the result codes are in ``cloudsms_client.codes``), and the
platform imports it from there.
"""

from __future__ import annotations

import datetime as dt

from cloudsms_client._time import UIP_FORMAT, UIP_TZ, format_uip_time, parse_uip_time

__all__ = ["UIP_FORMAT", "UIP_TZ", "format_uip_time", "parse_uip_time", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
