"""Errors of the asyncio SMPP transport (client and server side).

    CloudSMSError                      (cloudsms.exceptions)
     └── TransportError                the link, not the protocol, failed
          ├── BindFailed               the SMSC refused our bind (``command_status`` says why)
          └── SubmitError              a submit_sm did not get a usable submit_sm_resp
               ├── NotBound            no bound link right now: nothing was sent
               ├── SubmitTimeout       sent, no response within response_timeout_s: outcome unknown
               ├── ConnectionLost      the link dropped with the submit in flight: outcome unknown
               └── SubmitNacked        the SMSC answered generic_nack (§4.3): refused, not sent on

Strategy: the outcome that matters to a dispatcher is "was the message possibly accepted by the
carrier?". NotBound and SubmitNacked mean no (retry freely); SubmitTimeout and ConnectionLost mean
"unknown" (a retry may duplicate). A submit_sm_resp with an error command_status is *not* an
exception: :meth:`SmppClient.submit` returns it and the caller decides (permanent error,
throttled, OK). SubmitTimeout and ConnectionLost are also used for our other requests (bind,
enquire_link, and the server's deliver_sm) since they mean the same thing there.
"""

from __future__ import annotations

from cloudsms.exceptions import CloudSMSError
from cloudsms.smpp.constants import CommandStatus


def status_name(status: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; hex for a value SMPP 3.4 §5.1.3 does not name."""
    try:
        return CommandStatus(status).name
    except ValueError:
        return f"0x{status:08X}"


class TransportError(CloudSMSError):
    """The SMPP link failed."""


class BindFailed(TransportError):
    """The SMSC refused the bind."""

    def __init__(self, message: str | None = None, *, command_status: int = 0) -> None:
        super().__init__(message)
        #: The bind_*_resp command_status (SMPP 3.4 §5.1.3), e.g. ESME_RINVPASWD.
        self.command_status = command_status


class SubmitError(TransportError):
    """The submit did not get a usable response."""

    #: The SMSC's command_status when it gave one (generic_nack), else None.
    command_status: int | None = None


class NotBound(SubmitError):
    """No bound link right now (nothing was sent)."""


class SubmitTimeout(SubmitError):
    """Sent, no response within response_timeout_s: outcome unknown."""


class ConnectionLost(SubmitError):
    """The link dropped with the submit in flight: outcome unknown."""


class SubmitNacked(SubmitError):
    """The SMSC answered generic_nack (SMPP 3.4 §4.3): the submit was refused."""

    def __init__(self, message: str | None = None, *, command_status: int = 0) -> None:
        super().__init__(message)
        self.command_status = command_status
