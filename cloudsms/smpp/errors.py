"""The SMPP layer's errors: one tree, each error carrying the command_status to answer with.

    CloudSMSError                      (cloudsms.exceptions)
     └── SmppError                     command_status, sequence_number, command_id
          ├── LocalProtocolError       we broke SMPP: an invalid value given to a PDU or to
          │                            encode(), or a PDU sent in a session state that forbids it
          └── RemoteProtocolError      the peer broke SMPP: garbage bytes, an unknown command,
                                       a field over its limit, a PDU in the wrong session state;
                                       ``fatal`` says whether the byte stream can still be used

Strategy: as in h11 (``h11/_util.py``), who is at fault decides the class; what to answer
decides ``command_status``. The decoder never lets ``struct.error``, ``IndexError``,
``UnicodeDecodeError``, ``KeyError`` or ``ValueError`` escape: it maps them to a
RemoteProtocolError ``from`` the original exception, with the sequence number and command id of
the PDU when the header could be read, so the transport can answer with the matching ``*_resp``
or a generic_nack (see :func:`cloudsms.smpp.codec.error_response`).
"""

from __future__ import annotations

from cloudsms.exceptions import CloudSMSError
from cloudsms.smpp.constants import CommandStatus


class SmppError(CloudSMSError):
    """An SMPP protocol error."""

    #: The command_status a response to the offending PDU should carry (SMPP 3.4 §5.1.3).
    command_status: CommandStatus
    #: Sequence number of the offending PDU, when known (its header could be read).
    sequence_number: int | None
    #: command_id of the offending PDU, when known (may be a value not in CommandId).
    command_id: int | None

    def __init__(
        self,
        message: str | None = None,
        *,
        command_status: CommandStatus = CommandStatus.ESME_RSYSERR,
        sequence_number: int | None = None,
        command_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.sequence_number = sequence_number
        self.command_id = command_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, command_status={self.command_status.name}, "
            f"sequence_number={self.sequence_number!r}, command_id={self.command_id!r})"
        )


class LocalProtocolError(SmppError):
    """This side tried to break SMPP 3.4 (invalid field value, PDU not allowed in this state)."""


class RemoteProtocolError(SmppError):
    """The peer sent something that is not valid SMPP 3.4."""

    #: True when the byte stream cannot be resynchronised (bad command_length): the transport
    #: should answer generic_nack (if it can) and close the connection. False when exactly the
    #: offending PDU was consumed and the next one can be read.
    fatal: bool

    def __init__(
        self,
        message: str | None = None,
        *,
        command_status: CommandStatus = CommandStatus.ESME_RSYSERR,
        sequence_number: int | None = None,
        command_id: int | None = None,
        fatal: bool = False,
    ) -> None:
        super().__init__(
            message,
            command_status=command_status,
            sequence_number=sequence_number,
            command_id=command_id,
        )
        self.fatal = fatal
