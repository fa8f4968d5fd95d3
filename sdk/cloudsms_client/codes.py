"""UIP result codes and SMS states, exactly as the CloudSMS Web API v2.4 document names them.

The one definition of the wire vocabulary: the SDK reads answers and reports with it, and the
platform (``cloudsms.domain.codes``) imports it from here, so the two cannot drift apart.
Numeric on the wire: 0x10000001 is sent as the JSON integer 268435457.
"""

from __future__ import annotations

import enum

__all__ = ["ResultCode", "SmsState"]


class ResultCode(enum.IntEnum):
    """RESULT_CODE of an ANSWER, top level or per recipient (document appendix RESULT_CODE)."""

    OK = 0x01
    UNKNOWN_ERROR = 0x02
    BUSY = 0x03
    EMPTY_BODY = 0x04
    CHANNEL_NOT_EXIST = 0x05
    INVALID_PARAMETER = 0x10000001
    INVALID_CONTEXT = 0x10000003
    SEND_FAILED = 0x10000004
    QUEUE_TOO_LARGE = 0x10000005
    INTERCEPT = 0x10000006
    LOST_INFO = 0x10000007
    EMPTY_DATA = 0x1000000D
    DB_NOT_FIND = 0x1000000E
    UNPRICED_AREA = 0x1000000F
    INVALID_VERSION = 0x10000010

    @property
    def desc(self) -> str:
        """The RESULT_DESC the document gives this code."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[ResultCode, str] = {
    ResultCode.OK: "OK",
    ResultCode.UNKNOWN_ERROR: "Unknown_error",
    ResultCode.BUSY: "Busy",
    ResultCode.EMPTY_BODY: "Empty_data",
    ResultCode.CHANNEL_NOT_EXIST: "Channel_not_exist",
    ResultCode.INVALID_PARAMETER: "Invalid_parameter",
    ResultCode.INVALID_CONTEXT: "Invalid_context",
    ResultCode.SEND_FAILED: "Send_failed",
    ResultCode.QUEUE_TOO_LARGE: "Queue_too_large",
    ResultCode.INTERCEPT: "Intercept",
    ResultCode.LOST_INFO: "Lost_info",
    ResultCode.EMPTY_DATA: "Empty_data",
    ResultCode.DB_NOT_FIND: "DB_not_find",
    ResultCode.UNPRICED_AREA: "Unpriced_area",
    ResultCode.INVALID_VERSION: "Invalid_Version",
}


class SmsState(enum.IntEnum):
    """SMS_STATE of a delivery report (document section SMS_STATE 和 RESULT_DESC)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    IDLE = 9
