"""The customer SDK, as the platform's ``cloudsms.client``: the ``cloudsms_client`` package.

The SDK is its own slim distribution (``sdk/``, ``cloudsms-client``, needing only httpx) so a
customer's application does not install the platform. The platform ships the same package and
keeps this name working: ``from cloudsms.client import Client`` and the submodules
(``cloudsms.client.models`` …) are the very same objects as ``cloudsms_client``'s.
"""

from __future__ import annotations

import sys

from cloudsms_client import (
    AsyncClient,
    Client,
    CloudSMSClientError,
    InboundMessage,
    QueryResult,
    Recipient,
    RecipientLike,
    RecipientResult,
    Report,
    ReportReceiver,
    ResultCode,
    SendResult,
    SmsState,
    _core,
    aio,
    models,
    receiver,
    serve_receiver,
    sync,
)

# ``import cloudsms.client.models`` finds these before looking for files: one module, two names.
for _module in (_core, aio, models, receiver, sync):
    sys.modules[f"{__name__}.{_module.__name__.rpartition('.')[2]}"] = _module

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
