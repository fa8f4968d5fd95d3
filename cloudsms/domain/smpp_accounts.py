"""SMPP accounts of customers: who may bind to the SMPP server, how, and how fast.

An account is not the AUTH_KEY: a customer may have several, each a ``system_id`` / password
pair (SMPP 3.4 §5.2: system_id at most 15 characters, password at most 8). Passwords are stored
as salted scrypt digests (stdlib ``hashlib.scrypt``), never in clear: an 8-character password is
weak by the protocol's own limit, so the stored form must at least resist offline guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Protocol

#: SMPP 3.4 §5.2.1 / §5.2.2: C-Octet Strings of 16 and 9 octets with their NUL.
MAX_SYSTEM_ID = 15
MAX_PASSWORD = 8
BIND_MODES: tuple[str, ...] = ("tx", "rx", "trx")

# scrypt cost: ~15 ms per bind on one core; binds are rare, guesses must not be cheap.
_N, _R, _P = 1 << 14, 8, 1
_SCHEME = "scrypt"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppAccount:
    """One SMPP account as the server reads it (with the password digest)."""

    id: int
    customer_id: int
    customer: str
    system_id: str
    password_hash: str
    #: Bind modes allowed: a subset of ``BIND_MODES``.
    binds: frozenset[str]
    max_sessions: int
    #: Segments per second accepted over all of the account's sessions (0: no limit).
    throughput: int
    #: The ROUTE_ID its messages take (SMPP has no field for it).
    route: str
    #: deliver_sm receipts for intermediate states too, not only final ones.
    intermediate_receipts: bool
    enabled: bool = True
    #: Inbound messages (MO) routed to the customer go out as deliver_sm on the account's RX /
    #: TRX sessions, not over HTTP (on by default when the account may bind rx or trx).
    mo: bool = True


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$digest`` (hex) for storing; a fresh random salt unless given."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{_SCHEME}${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False for a malformed digest (never raises)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        expected = bytes.fromhex(digest)
        got = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


#: registered_delivery's receipt bits (SMPP 3.4 §5.2.17): a final receipt on success or failure,
#: or on failure only.
RECEIPT_FINAL = 1
RECEIPT_ON_FAILURE = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppReceipt:
    """A report outbox row claimed for a deliver_sm receipt, with what the receipt says."""

    outbox_id: int
    sms_uid: str
    account_id: int
    #: registered_delivery's receipt bits of the submit (``RECEIPT_FINAL`` / ``_ON_FAILURE``).
    mode: int
    sms_state: int
    report_ms: int
    attempts: int
    sender: str
    country_code: int
    dest_msisdn: str
    content: str
    created_ms: int
    #: The message_id the receipt carries: the SMS_UID, or for a submit_multi's recipients the
    #: one its submit_multi_resp gave (``messages.smpp_message_id``); empty: the SMS_UID.
    message_id: str = ""


#: The bind modes that can receive deliver_sm (SMPP 3.4 §2.2): an account taking MOs needs one.
RECEIVING_BINDS = frozenset({"rx", "trx"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppMo:
    """An inbound message claimed for delivery as deliver_sm on a customer's SMPP session."""

    #: ``inbound_messages.id``.
    outbox_id: int
    mo_uid: str
    customer_id: int
    #: The handset's number (source_addr) and the number it sent to (destination_addr).
    source: str
    destination: str
    text: str
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SmppSessionInfo:
    """One bound session of the customers' SMPP server, as operators see it."""

    id: int
    system_id: str
    customer: str
    #: tx, rx or trx.
    bind: str
    peer: str
    tls: bool
    bound_ms: int
    #: submit_sm taken and not answered yet, and the most allowed.
    window_in_use: int
    window: int
    submitted: int
    refused: int
    receipts: int
    #: submit_sm per second over the last full 10 seconds.
    submit_rate: float
    #: Inbound messages (MO) delivered on the session as deliver_sm.
    inbound: int = 0


class SmppSessions(Protocol):
    """The live sessions of an SMPP server in this process (the admin listener's view)."""

    def list_sessions(self) -> list[SmppSessionInfo]: ...
    def disconnect(self, session_id: int) -> bool: ...
