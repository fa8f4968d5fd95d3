"""The part of the SDK that does no I/O: packets, SERIALs, TLS contexts and the retry policy.

Strategy: ``Client`` (sync) and ``AsyncClient`` (asyncio) are two thin loops around the same
``ClientCore``: it builds each packet's bytes, reads each HTTP response into an ``Attempt`` and
decides, through ``RetryPolicy``, whether and when to send the *same bytes* again. Only the
loops know about sockets and sleeping, so every rule here is a plain unit test.

Why the same bytes: the platform remembers the ANSWER of every packet for 10 minutes
(``replay_window_s``), keyed by the AUTH_KEY and the packet's exact bytes — SERIAL and TIME
included. A retry of a packet that was accepted while its answer got lost (a timeout, a dropped
connection) therefore returns the original answer and the original SMS_UIDs: nothing is sent or
charged twice. A *new* packet (new SERIAL or TIME) would be a new send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from cloudsms_client import _json
from cloudsms_client._time import format_uip_time
from cloudsms_client.codes import ResultCode
from cloudsms_client.models import CloudSMSClientError, Recipient, result_code

SEND_METHOD = "SMS_SEND_REQUEST"
QUERY_METHOD = "DR_QUERY"
VERSION = "2021-01-01"
#: Document: "单次支持最多200个号码" — at most 200 recipients (or queried UIDs) per packet.
MAX_PER_PACKET = 200
#: Document: SERIAL "取值 1~65535"; each side counts its own and wraps.
MAX_SERIAL = 65_535
#: Top-level codes worth sending the same packet again for (document: "请稍后重试").
RETRY_CODES = frozenset({ResultCode.BUSY, ResultCode.QUEUE_TOO_LARGE})
#: The platform's default replay window is 600 s; retries stop well inside it, so a late retry
#: can never be taken for a new packet.
REPLAY_SAFE_S = 480.0

HEADERS = {"content-type": "application/json; charset=utf-8", "user-agent": "cloudsms-python"}

VerifyTypes = bool | str | PathLike[str] | ssl.SSLContext
CertTypes = tuple[str | PathLike[str], str | PathLike[str]] | str | PathLike[str]


class SerialCounter:
    """SERIAL 1..65535 for this client's packets, wrapping to 1; safe across threads.

    >>> counter = SerialCounter(start=65535)
    >>> counter.next(), counter.next()
    (65535, 1)
    """

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= MAX_SERIAL:
            raise ValueError("SERIAL starts within 1..65535")
        self._next = start
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            value = self._next
            self._next = value % MAX_SERIAL + 1
            return value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: the n-th retry waits ``backoff * 2**(n-1)`` s, at most ``max_backoff``.

    A packet is retried when the platform answers Busy or Queue_too_large, when no answer came
    (timeout, connection refused or reset) or when something in between answered 5xx/429 without
    a UIP ANSWER; at most ``retries`` times, and never past ``REPLAY_SAFE_S`` after the first try.

    >>> policy = RetryPolicy(retries=3, backoff=0.5)
    >>> [policy.delay(n) for n in (1, 2, 3)]
    [0.5, 1.0, 2.0]
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0

    def delay(self, retry: int) -> float:
        return float(min(self.backoff * 2 ** (retry - 1), self.max_backoff))

    def next_delay(self, attempts: int, outcome: Attempt, elapsed: float) -> float | None:
        """Seconds to wait before sending again, or None to stop with ``outcome``."""
        if not outcome.retryable or attempts > self.retries:
            return None
        wait = self.delay(attempts)
        return wait if elapsed + wait < REPLAY_SAFE_S else None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one HTTP exchange produced: a UIP ANSWER, or why there is none."""

    answer: dict[str, Any] | None
    error: str = ""
    retryable: bool = False


def read_response(status: int, content: bytes) -> Attempt:
    """An HTTP response as an Attempt. A JSON object with RESULT_CODE is an ANSWER whatever the
    status (the platform answers 403 + Channel_not_exist for a non-whitelisted address)."""
    try:
        body = _json.loads(content) if content.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict) and "RESULT_CODE" in body:
        return Attempt(body, retryable=result_code(body["RESULT_CODE"]) in RETRY_CODES)
    text = content[:80].decode("utf-8", "replace").strip()
    reason = f"HTTP {status} without a UIP ANSWER" + (f": {text!r}" if text else "")
    return Attempt(None, reason, retryable=status >= 500 or status == 429)


def transport_failure(exc: Exception) -> Attempt:
    """No answer at all: worth a retry (the same bytes are safe, see the module docstring)."""
    detail = str(exc) or type(exc).__name__
    return Attempt(None, f"{type(exc).__name__}: {detail}", retryable=True)


def finish(
    url: str, outcome: Attempt, attempts: int, cause: Exception | None
) -> tuple[dict[str, Any], int]:
    """The ANSWER to return once retrying stops, or CloudSMSClientError when there is none."""
    if outcome.answer is not None:
        return outcome.answer, attempts
    tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
    raise CloudSMSClientError(f"no answer from {url} after {tries}: {outcome.error}") from cause


def ssl_context(verify: VerifyTypes, cert: CertTypes | None) -> ssl.SSLContext | bool:
    """The TLS setting for httpx: a CA bundle path, an SSLContext, True (system/certifi CAs) or
    False (no verification, tests only), plus an optional client certificate.

    ``cert`` is ``(certfile, keyfile)`` or one PEM file holding both.
    """
    if isinstance(verify, ssl.SSLContext):
        # The caller's own context is used as given (its TLS versions are the caller's choice).
        if cert is not None:
            _load_cert(verify, cert)
        return verify
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        if cert is None:
            return True
        import httpx

        context = httpx.create_ssl_context()
    else:
        path = Path(verify)
        with _naming("CA bundle", path):
            if path.is_dir():
                context = ssl.create_default_context(capath=str(path))
            else:
                context = ssl.create_default_context(cafile=str(path))
    context.minimum_version = max(context.minimum_version, ssl.TLSVersion.TLSv1_2)
    if cert is not None:
        _load_cert(context, cert)
    return context


def _load_cert(context: ssl.SSLContext, cert: CertTypes) -> None:
    files = [str(c) for c in cert] if isinstance(cert, tuple) else [str(cert)]
    with _naming("client certificate", *files):
        context.load_cert_chain(*files)


@contextlib.contextmanager
def _naming(what: str, *files: str | PathLike[str]) -> Iterator[None]:
    """Errors of loading TLS files name the file (OpenSSL's say "No such file or directory" or
    "PEM lib" without one); still OSError or ssl.SSLError, the message in ``strerror``."""
    for file in files:
        try:
            with open(file, "rb"):
                pass
        except IsADirectoryError:
            continue  # a CA directory (capath)
        except OSError as exc:
            raise type(exc)(exc.errno, f"{what} {file}: {exc.strerror}") from None
    try:
        yield
    except ssl.SSLError as exc:
        named = " / ".join(str(f) for f in files)
        reason = exc.reason or str(exc)
        if "PEM lib" in reason:  # load_cert_chain's only word for any unusable file
            reason = "not a PEM certificate with its private key, or the key does not match"
        raise ssl.SSLError(exc.errno, f"{what} {named}: {reason}") from exc


def check_tls_files(what: str, certfile: str, keyfile: str | None = None) -> None:
    """Load a certificate and key once, so that a wrong file is an error naming it at start-up
    (uvicorn would raise OpenSSL's nameless one from inside its server task)."""
    files = [certfile, keyfile] if keyfile and keyfile != certfile else [certfile]
    with _naming(what, *files):
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*files)


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"URL must start with http:// or https://, got {url!r}")
    return url


@dataclass(frozen=True, slots=True)
class SendOptions:
    """The optional fields of SMS_SEND_REQUEST, resolved from the call and the client defaults."""

    route_id: str
    priority: int = 0
    signature: str | None = None
    signature_type: int | None = None
    sender: str | None = None
    customer_body: Mapping[str, Any] | None = None
    send_time: str | None = None


class ClientCore:
    """State shared by one client's calls: the key, the defaults and the SERIAL counter."""

    def __init__(
        self,
        auth_key: str,
        *,
        route_id: str | None,
        signature: str | None,
        signature_type: int | None,
        sender: str | None,
        retries: int,
        backoff: float,
    ) -> None:
        if not auth_key:
            raise ValueError("auth_key is required")
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff cannot be negative")
        self.auth_key = auth_key
        self.route_id = route_id
        self.signature = signature
        self.signature_type = signature_type
        self.sender = sender
        self.policy = RetryPolicy(retries=retries, backoff=backoff)
        self.serials = SerialCounter()

    def options(
        self,
        *,
        route_id: str | None,
        priority: int,
        customer_body: Mapping[str, Any] | None,
        send_time: dt.datetime | str | None,
        signature: str | None,
        signature_type: int | None,
        sender: str | None,
    ) -> SendOptions:
        route = route_id or self.route_id
        if not route:
            raise ValueError("route_id is required: pass it to the client or to send()")
        if priority not in (0, 1):
            raise ValueError("priority is 0 (normal) or 1 (high)")
        return SendOptions(
            route_id=route,
            priority=priority,
            signature=signature if signature is not None else self.signature,
            signature_type=signature_type if signature_type is not None else self.signature_type,
            sender=sender if sender is not None else self.sender,
            customer_body=customer_body,
            send_time=_send_time(send_time),
        )

    def send_packet(self, text: str, recipients: Sequence[Recipient], opts: SendOptions) -> bytes:
        """One SMS_SEND_REQUEST, fields in the document's order; optional fields only when set."""
        packet: dict[str, Any] = {
            "METHOD": SEND_METHOD,
            "TYPE": "REQUEST",
            "SERIAL": self.serials.next(),
            "TIME": format_uip_time(),
            "AUTH_KEY": self.auth_key,
            "ROUTE_ID": opts.route_id,
            "MULTI_MSISDN_LIST": [r.to_wire() for r in recipients],
            "SMS_CONTENT": text,
        }
        if opts.signature:
            packet["SIGNATURE"] = opts.signature
        if opts.signature_type is not None:
            packet["SIGNATURE_TYPE"] = opts.signature_type
        if opts.sender:
            packet["ORIGINAL_ADDR"] = opts.sender
        if opts.priority:
            packet["PRIORITY"] = opts.priority
        packet["VERSION"] = VERSION
        if opts.send_time:
            packet["SMS_SEND_TIME"] = opts.send_time
        if opts.customer_body is not None:
            packet["CUSTOMER_BODY"] = dict(opts.customer_body)
        return _json.dumps(packet)

    def query_packet(self, uids: Sequence[str]) -> bytes:
        """One DR_QUERY packet for at most 200 SMS_UIDs."""
        return _json.dumps(
            {
                "METHOD": QUERY_METHOD,
                "TYPE": "REQUEST",
                "SERIAL": self.serials.next(),
                "TIME": format_uip_time(),
                "AUTH_KEY": self.auth_key,
                "VERSION": VERSION,
                "SMS_UID_LIST": list(uids),
            }
        )


def chunks(items: Sequence[Any], size: int = MAX_PER_PACKET) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _send_time(value: dt.datetime | str | None) -> str | None:
    """SMS_SEND_TIME: a datetime is written in UTC+8; a string goes as is (the platform checks)."""
    if value is None or isinstance(value, str):
        return value or None
    if value.tzinfo is None:
        raise ValueError("send_time must be timezone-aware (the platform reads it as UTC+8)")
    return format_uip_time(value)
