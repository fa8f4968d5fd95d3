"""The CloudSMS customer SDK: send SMS, query their state, receive delivery reports.

Example::

    from cloudsms_client import Client, ReportReceiver, serve_receiver

    with Client(URL, AUTH_KEY, route_id="VerifyCode_516") as client:
        results = client.send("Your code is 123456", ["852-67000011", (86, "13800138000")])

    serve_receiver(ReportReceiver(AUTH_KEY, lambda report: print(report)), "0.0.0.0", 8080)

``AsyncClient`` has the same API with ``await``. The integration guide
(docs/integration-guide.en.md) describes the wire protocol underneath.

This package is its own distribution, ``cloudsms-client`` (``pip install ./sdk`` from the
repository), and needs only httpx: nothing of the platform. ``serve_receiver`` also needs
uvicorn (``pip install './sdk[serve]'``). The platform ships the same package and re-exports it
as ``cloudsms.client``.
"""

from __future__ import annotations

from cloudsms_client.aio import AsyncClient
from cloudsms_client.codes import ResultCode, SmsState
from cloudsms_client.models import (
    CloudSMSClientError,
    InboundMessage,
    QueryResult,
    Recipient,
    RecipientLike,
    RecipientResult,
    Report,
    SendResult,
)
from cloudsms_client.receiver import ReportReceiver, serve_receiver
from cloudsms_client.sync import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "CloudSMSClientError",
    "InboundMessage",
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
