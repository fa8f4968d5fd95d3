"""The blocking client: ``Client(url, auth_key, route_id=…).send(text, recipients)``.

One ``httpx.Client`` per ``Client``, so packets reuse a keep-alive connection (the document's
"long connection"). Thread-safe: SERIALs come from a locked counter.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from cloudsms_client._core import (
    HEADERS,
    MAX_PER_PACKET,
    CertTypes,
    ClientCore,
    VerifyTypes,
    check_url,
    chunks,
    finish,
    read_response,
    ssl_context,
    transport_failure,
)
from cloudsms_client.models import (
    CloudSMSClientError,
    QueryResult,
    RecipientLike,
    SendResult,
    as_recipient,
    parse_query_answer,
    parse_send_answer,
)


class Client:
    """Send SMS and query their state through the CloudSMS UIP endpoint.

    Example::

        from cloudsms_client import Client

        with Client("https://sms.example.com:1815/dave/io", AUTH_KEY, route_id="VerifyCode_516",
                    signature="CloudSMS", signature_type=1) as client:
            [result] = client.send("Your code is 123456", ["852-67000011"])
            for r in result.recipients:
                print(r.country_code, r.msisdn, r.code.name, r.sms_uid)
            states = client.query([r.sms_uid for r in result.accepted])

    ``send`` never raises for a refused packet or recipient: the results carry the codes. It
    raises ``CloudSMSClientError`` only when no ANSWER could be had after the retries.

    Retries (Busy, Queue_too_large, timeouts, connection errors, 5xx without an ANSWER) send the
    exact same bytes again — same SERIAL, same TIME. The platform keeps each packet's ANSWER for
    10 minutes keyed by those bytes, so when a packet was accepted but its answer was lost (a
    timeout), the retry gets the original ANSWER with the original SMS_UIDs, and nothing is sent
    or charged twice. Retries stop well inside that window (``_core.REPLAY_SAFE_S``).

    ``verify``: True (public CAs), a CA bundle path or an ``ssl.SSLContext``; ``cert``: a client
    certificate as ``(certfile, keyfile)`` or one PEM file, for mutual TLS; ``proxy``: an HTTP(S)
    proxy URL (environment variables such as HTTPS_PROXY are not read).
    """

    def __init__(
        self,
        url: str,
        auth_key: str,
        *,
        route_id: str | None = None,
        timeout: float = 30.0,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        signature: str | None = None,
        signature_type: int | None = None,
        sender: str | None = None,
        proxy: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = check_url(url)
        self._core = ClientCore(
            auth_key,
            route_id=route_id,
            signature=signature,
            signature_type=signature_type,
            sender=sender,
            retries=retries,
            backoff=backoff,
        )
        self._http = httpx.Client(
            timeout=timeout,
            verify=ssl_context(verify, cert),
            headers=HEADERS,
            transport=transport,
            proxy=proxy,
            # Proxies and CA bundles come from the arguments, never silently from the environment.
            trust_env=False,
        )
        #: Called with each delay before a retry; tests and CLIs hook it. Default: time.sleep.
        self.sleep: Callable[[float], None] = time.sleep

    def send(
        self,
        text: str,
        recipients: Iterable[RecipientLike],
        *,
        route_id: str | None = None,
        priority: int = 0,
        customer_body: Mapping[str, Any] | None = None,
        send_time: dt.datetime | str | None = None,
        signature: str | None = None,
        signature_type: int | None = None,
        sender: str | None = None,
        on_packet: Callable[[SendResult], None] | None = None,
    ) -> list[SendResult]:
        """Send ``text`` to ``recipients``: one packet per 200, one ``SendResult`` per packet.

        ``recipients``: ``"852-67000011"``, ``("852", "67000011")``, ``(852, "67000011")`` or
        ``Recipient``. ``send_time`` schedules (aware datetime, or UTC+8 text); ``on_packet`` is
        called after each packet's answer (progress bars). Arguments left None take the
        client's defaults. Raises ValueError before sending anything if an argument is unusable.
        """
        wanted = [as_recipient(r) for r in recipients]
        if not wanted:
            raise ValueError("no recipients")
        opts = self._core.options(
            route_id=route_id,
            priority=priority,
            customer_body=customer_body,
            send_time=send_time,
            signature=signature,
            signature_type=signature_type,
            sender=sender,
        )
        results = []
        for part in chunks(wanted, MAX_PER_PACKET):
            answer, attempts = self._exchange(self._core.send_packet(text, part, opts))
            result = parse_send_answer(answer, list(part), attempts=attempts)
            results.append(result)
            if on_packet is not None:
                on_packet(result)
        return results

    def query(self, uids: Iterable[str]) -> list[QueryResult]:
        """The current state of each SMS_UID (DR_QUERY), in the order given; 200 per packet."""
        wanted = [str(u) for u in uids]
        results: list[QueryResult] = []
        for part in chunks(wanted, MAX_PER_PACKET):
            answer, _ = self._exchange(self._core.query_packet(part))
            results.extend(parse_query_answer(answer, list(part)))
        return results

    def _exchange(self, body: bytes) -> tuple[dict[str, Any], int]:
        """POST ``body`` until there is an ANSWER to return; the same bytes every time."""
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            cause: Exception | None = None
            try:
                response = self._http.post(self.url, content=body)
                outcome = read_response(response.status_code, response.content)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise CloudSMSClientError(f"{self.url}: {exc}") from exc
            except httpx.TransportError as exc:
                cause, outcome = exc, transport_failure(exc)
            delay = self._core.policy.next_delay(attempts, outcome, time.monotonic() - started)
            if delay is None:
                return finish(self.url, outcome, attempts, cause)
            self.sleep(delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
