"""Receiving delivery reports: ``ReportReceiver`` (an ASGI app) and ``serve_receiver`` (uvicorn).

Strategy: ``ReportReceiver.handle(body)`` turns one POST body into (ANSWER bytes, reports) and
never raises; the ASGI shell only reads the body under a limit and writes the ANSWER. The checks
mirror the platform's own order for its endpoint, so an unauthenticated caller learns nothing:
body → JSON object → METHOD/TYPE/SERIAL/TIME → AUTH_KEY (constant-time) → the report fields.

The platform counts a push as delivered only when the answer is HTTP 2xx with RESULT_CODE 1;
anything else is retried with backoff for at least 24 hours. So the receiver answers 1 only after
your callback returned, and Unknown_error (2) when it raised: the report comes again later.
Delivery is at least once — make the callback idempotent on ``(sms_uid, sms_state)``.

Answers (HTTP 200 always, the document's SMS_PUSH_REPORT ANSWER shape):

=====================  =============================================================
RESULT_CODE            when
=====================  =============================================================
1 OK                   the report was handed to the callback, which returned
2 Unknown_error        the callback raised
4 Empty_data           the body is empty
5 Channel_not_exist    AUTH_KEY is not yours
0x10000001 Invalid_…   METHOD not SMS_PUSH_REPORT, TYPE not REQUEST, a field of the
                       wrong type or out of range (SERIAL, SMS_STATE …)
0x10000003 Invalid_…   the body is not JSON, or larger than 64 KiB
0x10000007 Lost_info   a required field is absent
0x1000000D Empty_data  JSON, but not a non-empty object
=====================  =============================================================
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cloudsms_client import _json
from cloudsms_client._core import check_tls_files
from cloudsms_client._time import format_uip_time
from cloudsms_client.codes import ResultCode, SmsState
from cloudsms_client.models import InboundMessage, Report, read_decimal

log = logging.getLogger("cloudsms.client.receiver")

PUSH_METHOD = "SMS_PUSH_REPORT"
#: Inbound messages (guide §14), received when the receiver is given ``on_mo``.
MO_METHOD = "SMS_PUSH_MO"
#: A push is ~500 bytes; anything this large is not one.
MAX_BODY_BYTES = 65_536

OnReport = Callable[[Report], Awaitable[None] | None]
OnMo = Callable[[InboundMessage], Awaitable[None] | None]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Refused(Exception):
    def __init__(self, code: ResultCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ReportReceiver:
    """An ASGI app that receives SMS_PUSH_REPORT, checks AUTH_KEY and calls ``on_report``.

    Example::

        from cloudsms_client import Report, ReportReceiver, serve_receiver

        async def on_report(report: Report) -> None:
            print(report.sms_uid, report.sms_state.name, report.fee, report.currency)

        receiver = ReportReceiver(AUTH_KEY, on_report)
        serve_receiver(receiver, "0.0.0.0", 8080)      # or mount it in any ASGI server

    ``on_report`` may be a plain function or a coroutine function; a plain function runs on the
    event loop, so keep it quick (or make it async). Any path is accepted: give the platform's
    operator the URL you want (only one callback URL per customer).
    """

    def __init__(self, auth_key: str, on_report: OnReport, on_mo: OnMo | None = None) -> None:
        if not auth_key:
            raise ValueError("auth_key is required")
        self._key = auth_key.encode("utf-8")
        self.on_report = on_report
        #: Called with each inbound message (SMS_PUSH_MO) when given; without it such pushes
        #: are refused (Invalid_parameter), and the platform retries them.
        self.on_mo = on_mo

    async def handle(self, body: bytes) -> tuple[bytes, list[Report]]:
        """Answer one POST body; the reports it carried (empty unless the answer is OK)."""
        serial = 0
        try:
            packet = _decode(body)
            serial = _serial(packet)
            if packet.get("METHOD") == MO_METHOD and self.on_mo is not None:
                return await self._mo(packet, serial), []
            reports = self._read(packet)
        except _Refused as exc:
            log.warning("report refused: %s", exc)
            return answer(serial, exc.code), []
        try:
            for report in reports:
                outcome = self.on_report(report)
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception:
            log.exception("on_report failed; answering Unknown_error so the platform retries")
            return answer(serial, ResultCode.UNKNOWN_ERROR), []
        return answer(serial, ResultCode.OK), reports

    async def _mo(self, packet: dict[str, Any], serial: int) -> bytes:
        """Answer one SMS_PUSH_MO: check the envelope and key, then call ``on_mo``."""
        assert self.on_mo is not None
        self._check_envelope(packet, MO_METHOD)
        count = packet.get("SMS_COUNT", 1)
        if not _is_int(count):
            raise _Refused(ResultCode.INVALID_PARAMETER, "SMS_COUNT must be an integer")
        mo = InboundMessage(
            mo_uid=_text(packet, "MO_UID", required=True),
            source_msisdn=_text(packet, "SOURCE_MSISDN", required=True),
            dest_msisdn=_text(packet, "DEST_MSISDN", required=True),
            content=_text(packet, "SMS_CONTENT", required=False),
            keyword=_text(packet, "KEYWORD", required=False),
            sms_count=count,
            receive_time=_text(packet, "RECEIVE_TIME", required=False),
            serial=packet["SERIAL"],
            time=str(packet["TIME"]),
        )
        try:
            outcome = self.on_mo(mo)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("on_mo failed; answering Unknown_error so the platform retries")
            return answer(serial, ResultCode.UNKNOWN_ERROR, MO_METHOD)
        return answer(serial, ResultCode.OK, MO_METHOD)

    def _check_envelope(self, packet: dict[str, Any], method: str) -> None:
        for name in ("METHOD", "TYPE", "SERIAL", "TIME", "AUTH_KEY"):
            if packet.get(name) is None:
                raise _Refused(ResultCode.LOST_INFO, f"{name} is missing")
        if packet["METHOD"] != method or packet["TYPE"] != "REQUEST":
            raise _Refused(ResultCode.INVALID_PARAMETER, f"not an {method} REQUEST")
        if not _is_int(packet["SERIAL"]) or not 1 <= packet["SERIAL"] <= 65_535:
            raise _Refused(ResultCode.INVALID_PARAMETER, "SERIAL must be an integer 1..65535")
        key = packet["AUTH_KEY"]
        if not isinstance(key, str) or not hmac.compare_digest(key.encode("utf-8"), self._key):
            raise _Refused(ResultCode.CHANNEL_NOT_EXIST, "AUTH_KEY does not match")

    def _read(self, packet: dict[str, Any]) -> list[Report]:
        self._check_envelope(packet, PUSH_METHOD)
        uid = _text(packet, "SMS_UID", required=True)
        entries = packet.get("SMS_RESULT_LIST")
        if entries is None:
            raise _Refused(ResultCode.LOST_INFO, "SMS_RESULT_LIST is missing")
        if not isinstance(entries, list) or not entries:
            raise _Refused(ResultCode.INVALID_PARAMETER, "SMS_RESULT_LIST must be a list")
        body = packet.get("CUSTOMER_BODY")
        if body is not None and not isinstance(body, dict):
            raise _Refused(ResultCode.INVALID_PARAMETER, "CUSTOMER_BODY must be an object")
        count = packet.get("SMS_COUNT")
        if count is not None and not _is_int(count):
            raise _Refused(ResultCode.INVALID_PARAMETER, "SMS_COUNT must be an integer")
        fee = packet.get("FEE")
        amount = read_decimal(fee)
        if fee is not None and amount is None:
            raise _Refused(ResultCode.INVALID_PARAMETER, "FEE must be a decimal amount")
        common = {
            "sms_uid": uid,
            "source_msisdn": _text(packet, "SOURCE_MSISDN", required=False),
            "report_time": _text(packet, "REPORT_TIME", required=False),
            "customer_body": body or {},
            "sms_count": count,
            "fee": amount,
            "currency": _text(packet, "CURRENCY", required=False) or None,
            "serial": packet["SERIAL"],
            "time": str(packet["TIME"]),
        }
        return [_entry_report(entry, common) for entry in entries]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            refusal = answer(0, ResultCode.INVALID_PARAMETER)
            await _respond(send, 405, refusal, [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:
            await _respond(send, 413, answer(0, ResultCode.INVALID_CONTEXT))
            return
        payload, _ = await self.handle(body)
        await _respond(send, 200, payload)


def answer(serial: int, code: ResultCode, method: str = PUSH_METHOD) -> bytes:
    """The SMS_PUSH_REPORT ANSWER (document section DR回调响应包); SMS_PUSH_MO's has its shape."""
    return _json.dumps(
        {
            "METHOD": method,
            "TYPE": "ANSWER",
            "SERIAL": serial,
            "TIME": format_uip_time(),
            "RESULT_CODE": int(code),
            "RESULT_DESC": code.desc,
        }
    )


def serve_receiver(
    receiver: ReportReceiver,
    host: str = "0.0.0.0",
    port: int = 8080,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "warning",
) -> None:
    """Run ``receiver`` with uvicorn in the foreground until interrupted (Ctrl-C).

    Example::

        serve_receiver(ReportReceiver(AUTH_KEY, print), "0.0.0.0", 8080)

    With ``ssl_certfile``/``ssl_keyfile`` it serves HTTPS (the platform pushes to HTTP or HTTPS).

    uvicorn is not a dependency of the SDK (an application that already has an ASGI server
    mounts ``receiver`` there instead): ``pip install 'cloudsms-client[serve]'`` brings it.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(
            "serve_receiver needs uvicorn: pip install 'cloudsms-client[serve]' (or uvicorn),"
            " or mount the ReportReceiver in your own ASGI server"
        ) from exc

    if ssl_certfile:
        check_tls_files("TLS certificate", ssl_certfile, ssl_keyfile)
    uvicorn.run(
        receiver,
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=75,
    )


def _decode(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise _Refused(ResultCode.EMPTY_BODY, "empty body")
    try:
        packet = _json.loads(body)
    except ValueError:
        raise _Refused(ResultCode.INVALID_CONTEXT, "body is not JSON") from None
    if not isinstance(packet, dict) or not packet:
        raise _Refused(ResultCode.EMPTY_DATA, "body is not a non-empty JSON object")
    return packet


def _serial(packet: dict[str, Any]) -> int:
    """The SERIAL to echo: the packet's own when valid, else 0."""
    serial = packet.get("SERIAL")
    if isinstance(serial, int) and not isinstance(serial, bool) and 1 <= serial <= 65_535:
        return serial
    return 0


def _entry_report(entry: object, common: dict[str, Any]) -> Report:
    if not isinstance(entry, dict):
        raise _Refused(ResultCode.INVALID_PARAMETER, "SMS_RESULT_LIST entry is not an object")
    for name in ("COUNTRY_CODE", "DEST_MSISDN", "SMS_STATE"):
        if entry.get(name) is None:
            raise _Refused(ResultCode.LOST_INFO, f"{name} is missing")
    cc, state = entry["COUNTRY_CODE"], entry["SMS_STATE"]
    if not _is_int(cc) or not _is_int(state) or state not in SmsState._value2member_map_:
        raise _Refused(ResultCode.INVALID_PARAMETER, "COUNTRY_CODE or SMS_STATE out of range")
    sms_state = SmsState(state)
    desc = entry.get("RESULT_DESC")
    return Report(
        country_code=cc,
        dest_msisdn=str(entry["DEST_MSISDN"]),
        sms_state=sms_state,
        result_desc=str(desc) if desc else sms_state.name,
        **common,
    )


def _text(packet: dict[str, Any], name: str, *, required: bool) -> str:
    value = packet.get(name)
    if value is None:
        if required:
            raise _Refused(ResultCode.LOST_INFO, f"{name} is missing")
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _Refused(ResultCode.INVALID_PARAMETER, f"{name} must be a string")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(payload)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
