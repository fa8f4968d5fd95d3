"""Customer commands: ``cloudsms send``, ``cloudsms listen`` and ``cloudsms query``.

They use the SDK (``cloudsms_client``) exactly as a customer's own code would, against any
CloudSMS endpoint; nothing here opens the platform's database. The endpoint and key come from
options or the environment (``CLOUDSMS_URL``, ``CLOUDSMS_AUTH_KEY``), so the key need not appear
in the shell history or the process list:

    export CLOUDSMS_URL=https://sms.example.com:1815/dave/io CLOUDSMS_AUTH_KEY=…
    cloudsms send --to 852-67000011 --text "Your code is 123456" --route VerifyCode_516
    cloudsms query 0MWWBXC46SZZVVU4600000
    cloudsms listen --port 8080

Exit codes: 0 done (``send``: every recipient accepted); 1 a recipient or packet was refused, or
the endpoint could not be reached; 2 bad input (see ``cloudsms.cli._common``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from cloudsms.cli._common import say, table
from cloudsms.domain.codes import SmsState
from cloudsms.exceptions import CloudSMSError, ConfigError
from cloudsms_client import (
    Client,
    CloudSMSClientError,
    QueryResult,
    Recipient,
    Report,
    ReportReceiver,
    SendResult,
)
from cloudsms_client._core import check_tls_files
from cloudsms_client.models import as_recipient

PROGRESS_OVER = 200
QUERY_COLUMNS = (
    "SMS_UID", "RESULT", "NUMBER", "SMS_STATE", "DESC", "SUBMITTED", "REPORTED", "SMS_COUNT", "FEE"
)  # fmt: skip

Url = Annotated[
    str,
    typer.Option("--url", envvar="CLOUDSMS_URL", show_envvar=True, help="UIP endpoint URL."),
]
Key = Annotated[
    str,
    typer.Option("--key", envvar="CLOUDSMS_AUTH_KEY", show_envvar=True, help="Your AUTH_KEY."),
]
Ca = Annotated[
    Path | None,
    typer.Option("--ca", envvar="CLOUDSMS_CA", help="CA bundle that signed the server's cert."),
]
Cert = Annotated[
    Path | None,
    typer.Option("--cert", envvar="CLOUDSMS_CERT", help="Client certificate (PEM) for mutual TLS."),
]
CertKey = Annotated[
    Path | None,
    typer.Option("--cert-key", envvar="CLOUDSMS_CERT_KEY", help="Its key, if not in --cert."),
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for each answer.")]
Retries = Annotated[int, typer.Option(help="Retries on Busy, Queue_too_large, no answer.")]
Json = Annotated[bool, typer.Option("--json", help="JSON output, one object per line.")]


def register(app: typer.Typer) -> None:
    """Add ``send``, ``listen`` and ``query`` as top-level commands of ``app``."""
    app.command("send")(send)
    app.command("listen")(listen)
    app.command("query")(query)


def send(
    text: Annotated[str, typer.Option("--text", help="SMS_CONTENT: the message text.")],
    url: Url,
    key: Key,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Recipient CC-NUMBER, e.g. 852-67000011.")
    ] = None,
    to_file: Annotated[
        Path | None, typer.Option("--to-file", help="File of recipients, one CC-NUMBER a line.")
    ] = None,
    route: Annotated[
        str, typer.Option("--route", envvar="CLOUDSMS_ROUTE_ID", help="ROUTE_ID to send on.")
    ] = "",
    signature: Annotated[str | None, typer.Option(help="SIGNATURE, without brackets.")] = None,
    signature_type: Annotated[
        int | None, typer.Option(min=1, max=5, help="1 【S】… 2 …【S】 3 [S]… 4 …[S] 5 as is.")
    ] = None,
    sender: Annotated[str | None, typer.Option(help="ORIGINAL_ADDR (sender ID).")] = None,
    priority: Annotated[int, typer.Option(min=0, max=1, help="PRIORITY: 0 normal, 1 high.")] = 0,
    ca: Ca = None,
    cert: Cert = None,
    cert_key: CertKey = None,
    timeout: Timeout = 30.0,
    retries: Retries = 3,
    json: Json = False,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Then wait up to SECONDS for the final state of every accepted message (DR_QUERY"
            " once a second) and print them; exit 1 unless every one is DELIVERED.",
        ),
    ] = 0.0,
) -> None:
    """Send one message to recipients (200 per packet) and print each recipient's result.

    Exits 1 when any recipient was refused (with ``--wait``: or not delivered in time).
    """
    recipients = [*_parse_list(to or [], "--to"), *_read_file(to_file)]
    if not recipients:
        raise ConfigError("no recipients: give --to or --to-file")
    if not route:
        raise ConfigError("no route: give --route or set CLOUDSMS_ROUTE_ID")
    with (
        _client(url, key, ca, cert, cert_key, timeout, retries) as client,
        _progress(len(recipients)) as advance,
    ):
        results = client.send(
            text,
            recipients,
            route_id=route,
            priority=priority,
            signature=signature,
            signature_type=signature_type,
            sender=sender,
            on_packet=lambda r: advance(len(r.recipients)),
        )
        _print_results(results, json)
        accepted = sum(len(r.accepted) for r in results)
        refused = len(recipients) - accepted
        packets = ", ".join(
            sorted({f"{r.desc} ({code_text(r.code)})" for r in results if not r.ok})
        )
        say(
            f"{len(results)} packet{'s' if len(results) > 1 else ''}: {accepted} accepted, "
            f"{refused} refused" + (f"; packets refused: {packets}" if packets else "")
        )
        delivered = True
        if wait and accepted:
            uids = [r.sms_uid for result in results for r in result.accepted]
            delivered = _wait_for_final(client, uids, wait, json)
    if refused or not delivered:
        raise typer.Exit(1)


#: DR_QUERY states that may still change (the rest are final).
_PENDING_STATES = frozenset({SmsState.ENROUTE, SmsState.ACCEPTED, SmsState.IDLE})


def _wait_for_final(client: Client, uids: list[str], seconds: float, json: bool) -> bool:
    """Query ``uids`` once a second until every one is final or ``seconds`` have passed, print
    the states, and say whether every message was DELIVERED."""
    deadline = time.monotonic() + seconds
    while True:
        states = client.query(uids)
        pending = [s for s in states if s.ok and s.sms_state in _PENDING_STATES]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    _print_states(states, json)
    delivered = sum(s.sms_state is SmsState.DELIVERED for s in states)
    say(
        f"{delivered} of {len(states)} delivered"
        + (f", {len(pending)} not final after {seconds:g} s" if pending else "")
    )
    return delivered == len(states)


def query(
    uids: Annotated[list[str], typer.Argument(help="SMS_UIDs to look up.", show_default=False)],
    url: Url,
    key: Key,
    ca: Ca = None,
    cert: Cert = None,
    cert_key: CertKey = None,
    timeout: Timeout = 30.0,
    retries: Retries = 3,
    json: Json = False,
) -> None:
    """Print the current state of your messages (DR_QUERY)."""
    with _client(url, key, ca, cert, cert_key, timeout, retries) as client:
        states = client.query(uids)
    _print_states(states, json)
    if not all(s.ok for s in states):
        raise typer.Exit(1)


def _print_states(states: list[QueryResult], json: bool) -> None:
    if json:
        for s in states:
            typer.echo(orjson.dumps(_query_json(s)).decode())
    else:
        table("messages", QUERY_COLUMNS, (_query_row(s) for s in states))


def listen(
    key: Key,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    json: Json = False,
) -> None:
    """Receive delivery reports (SMS_PUSH_REPORT) and inbound messages (SMS_PUSH_MO) and print
    each as it arrives."""
    from cloudsms_client import InboundMessage, serve_receiver

    def on_report(report: Report) -> None:
        line = orjson.dumps(report_json(report)).decode() if json else report_line(report)
        typer.echo(line)

    def on_mo(mo: InboundMessage) -> None:
        if json:
            typer.echo(orjson.dumps({"METHOD": "SMS_PUSH_MO", **dataclasses.asdict(mo)}).decode())
        else:
            typer.echo(f"{mo.receive_time or mo.time} MO {mo.mo_uid} from {mo.source_msisdn}"
                       f" to {mo.dest_msisdn}: {mo.content}")  # fmt: skip

    if tls_key is not None and tls_cert is None:
        raise ConfigError("--tls-key needs --tls-cert")
    if tls_cert is not None and tls_key is None:
        tls_key = tls_cert  # one PEM file holding both
    scheme = "https" if tls_cert else "http"
    if tls_cert is not None:
        try:
            check_tls_files("TLS file", str(tls_cert), str(tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(exc.strerror or str(exc)) from exc
    say(f"listening for reports on {scheme}://{host}:{port}/ (Ctrl-C to stop)")
    serve_receiver(
        ReportReceiver(key, on_report, on_mo),
        host,
        port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(
    url: str,
    key: str,
    ca: Path | None,
    cert: Path | None,
    cert_key: Path | None,
    timeout: float,
    retries: int,
) -> Iterator[Client]:
    """A Client; unusable input (URL, certificate files) becomes a ConfigError (exit 2)."""
    certificate: Any = None
    if cert is not None:
        certificate = (str(cert), str(cert_key)) if cert_key else str(cert)
    try:
        client = Client(
            url, key, timeout=timeout, verify=str(ca) if ca else True, cert=certificate,
            retries=retries,
        )  # fmt: skip
    except (ValueError, OSError, ssl.SSLError) as exc:  # SSLError: strerror names the file
        raise ConfigError(getattr(exc, "strerror", None) or str(exc)) from exc
    with client:
        try:
            yield client
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        except CloudSMSClientError as exc:  # the SDK's own error: no answer after the retries
            raise CloudSMSError(str(exc)) from exc


def _parse_list(values: list[str], where: str) -> list[Recipient]:
    try:
        return [as_recipient(v) for v in values]
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _read_file(path: Path | None) -> list[Recipient]:
    """Recipients of a file: one CC-NUMBER a line; blank lines and ``#`` comments skipped."""
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    found = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            found.append(_parse_list([text], f"{path}:{number}")[0])
    return found


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for lists over 200 numbers; a no-op otherwise."""
    if total <= PROGRESS_OVER:
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("send", total=total)
        yield lambda n: bar.advance(task, n)


def code_text(code: int) -> str:
    """A RESULT_CODE as the document writes it: 0x01, 0x10000001."""
    return f"0x{code:02X}" if code < 0x100 else f"0x{code:08X}"


def _print_results(results: list[SendResult], json: bool) -> None:
    rows = [r for result in results for r in result.recipients]
    if json:
        for r in rows:
            typer.echo(
                orjson.dumps(
                    {
                        "COUNTRY_CODE": r.country_code,
                        "DEST_MSISDN": r.msisdn,
                        "RESULT_CODE": int(r.code),
                        "RESULT_DESC": r.desc,
                        "RESULT_DETAIL": r.detail,
                        "SMS_UID": r.sms_uid,
                    }
                ).decode()
            )
        return
    table(
        "results",
        ["COUNTRY_CODE", "DEST_MSISDN", "RESULT_CODE", "RESULT_DESC", "SMS_UID", "DETAIL"],
        (
            (r.country_code, r.msisdn, code_text(r.code), r.desc, r.sms_uid or "-", r.detail)
            for r in rows
        ),
    )


def _query_row(s: QueryResult) -> list[Any]:
    number = f"{s.country_code}-{s.msisdn}" if s.country_code is not None else None
    fee = f"{s.fee} {s.currency}" if s.fee is not None else None
    state = f"{int(s.sms_state)} {s.sms_state.name}" if s.sms_state is not None else None
    return [
        s.sms_uid, f"{code_text(s.code)} {s.desc}", number, state, s.state_desc or None,
        s.submit_time or None, s.report_time or None, s.sms_count, fee,
    ]  # fmt: skip


def _query_json(s: QueryResult) -> dict[str, Any]:
    return {
        "SMS_UID": s.sms_uid,
        "RESULT_CODE": int(s.code),
        "RESULT_DESC": s.desc,
        "COUNTRY_CODE": s.country_code,
        "DEST_MSISDN": s.msisdn,
        "SMS_STATE": int(s.sms_state) if s.sms_state is not None else None,
        "STATE_DESC": s.state_desc,
        "SUBMIT_TIME": s.submit_time,
        "REPORT_TIME": s.report_time,
        "SMS_COUNT": s.sms_count,
        "FEE": str(s.fee) if s.fee is not None else None,
        "CURRENCY": s.currency,
    }


def report_line(report: Report) -> str:
    """One report on one line, e.g. ``2025-11-25 00:00:03 5A3B… 852-67000011 2 DELIVERED …``."""
    parts = [
        report.report_time or report.time,
        report.sms_uid,
        f"{report.country_code}-{report.dest_msisdn}",
        f"{int(report.sms_state)} {report.sms_state.name}",
    ]
    if report.result_desc != report.sms_state.name:
        parts.append(report.result_desc)
    if report.sms_count is not None:
        parts.append(f"count={report.sms_count}")
    if report.fee is not None:
        parts.append(f"fee={report.fee} {report.currency or ''}".rstrip())
    if report.customer_body:
        parts.append("body=" + orjson.dumps(report.customer_body).decode())
    return " ".join(parts)


def report_json(report: Report) -> dict[str, Any]:
    return {
        "SMS_UID": report.sms_uid,
        "COUNTRY_CODE": report.country_code,
        "DEST_MSISDN": report.dest_msisdn,
        "SMS_STATE": int(report.sms_state),
        "RESULT_DESC": report.result_desc,
        "REPORT_TIME": report.report_time,
        "SOURCE_MSISDN": report.source_msisdn,
        "CUSTOMER_BODY": report.customer_body,
        "SMS_COUNT": report.sms_count,
        "FEE": str(report.fee) if report.fee is not None else None,
        "CURRENCY": report.currency,
        "SERIAL": report.serial,
        "TIME": report.time,
    }
