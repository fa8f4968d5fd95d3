"""UIP result codes and SMS states, exactly as the CloudSMS Web API v2.4 document names them.

SPEC §2 is the table of result codes (numeric on the wire: 0x10000001 is sent as 268435457);
SPEC §5 the SMS_STATE values of delivery reports. The two enums are defined once, in the
customer SDK (``cloudsms_client.codes``, shipped with the platform), so the platform and the SDK
read the wire with the same table.
"""

from __future__ import annotations

from cloudsms_client.codes import ResultCode, SmsState

__all__ = ["LOCAL_REJECTED", "LOCAL_REJECTED_ERROR", "ResultCode", "SmsState"]

#: RESULT_DESC of a report for a message the platform refused itself (document: error 60).
LOCAL_REJECTED = "LOCAL_REJECTED"
LOCAL_REJECTED_ERROR = 60
