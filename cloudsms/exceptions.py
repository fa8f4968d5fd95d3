"""The one error tree of cloudsms.

    CloudSMSError
     ├── ConfigError            bad setting or operator input (readable message, no traceback)
     ├── NotFound               an operator named something that does not exist
     ├── Conflict               an operator change collides with existing data
     ├── StoreError             the database could not be read or written (API: DB_not_find)
     ├── SmppError              (cloudsms.smpp.errors) protocol errors, local or remote
     ├── TransportError         (cloudsms.transport.errors) the SMPP link failed
     └── HttpClientError        (cloudsms.transport.http_client) an HTTP request got no answer

Every boundary (HTTP handler, CLI command, SMPP transport) translates these into its own answer
and keeps the cause with ``raise … from exc``.
"""

from __future__ import annotations


class CloudSMSError(Exception):
    """A cloudsms error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(CloudSMSError):
    """Invalid configuration or operator input."""


class NotFound(CloudSMSError):
    """No such object."""


class Conflict(CloudSMSError):
    """The change conflicts with existing data."""


class StoreError(CloudSMSError):
    """The store could not be read or written."""
