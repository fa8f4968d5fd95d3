"""The CloudSMS customer SDK: send SMS, query their state, receive delivery reports.

Example::

    from cloudsms.client import Client, ReportReceiver, serve_receiver

    with Client(URL, AUTH_KEY, route_id="VerifyCode_516") as client:
        results = client.send("Your code is 123456", ["852-67000011", (86, "13800138000")])

    serve_receiver(ReportReceiver(AUTH_KEY, lambda report: print(report)), "0.0.0.0", 8080)

``AsyncClient`` has the same API with ``await``. The integration guide
(docs/integration-guide.en.md) describes the wire protocol underneath.
"""

from __future__ import annotations

from cloudsms.client.aio import AsyncClient
from cloudsms.client.models import (
    CloudSMSClientError,
    QueryResult,
    Recipient,
    RecipientLike,
    RecipientResult,
    Report,
    SendResult,
)
from cloudsms.client.receiver import ReportReceiver, serve_receiver
from cloudsms.client.sync import Client
from cloudsms.domain.codes import ResultCode, SmsState

__all__ = [
    "AsyncClient",
    "Client",
    "CloudSMSClientError",
    "QueryResult",
    "Recipient",
    "RecipientLike",
    "RecipientResult",
    "Report",
    "ReportReceiver",
    "ResultCode",
    "SendResult",
    "SmsState",
    "serve_receiver",
]
