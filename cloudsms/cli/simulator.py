"""`cloudsms smsc-sim`: run the built-in SMSC simulator in the foreground.

Strategy: parse and validate every option first (a bad value is one ``error:`` line and exit
code 2, like the rest of the CLI, via ConfigError), then run :class:`SmscSimulator` on uvloop
until Ctrl-C / SIGTERM. Recording is bounded (``--record-limit``) so a long-running sandbox
does not grow without end.

    cloudsms smsc-sim --port 2775 --account acme:secret --behaviour throttle:50 \\
        --delivered 0.9 --undeliverable 0.05 --rejected 0.03 --expired 0.02 \\
        --receipt-delay uniform:0.5:3 --id-format decimal --first-id 1
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from cloudsms.exceptions import CloudSMSError, ConfigError
from cloudsms.simulator.behaviours import Behaviour, parse_behaviour
from cloudsms.simulator.receipts import ReceiptPolicy, parse_delay
from cloudsms.simulator.server import ID_FORMATS, IdFormat, SmscSimulator


def parse_accounts(values: list[str]) -> dict[str, str]:
    """``["user:pass", …]`` → {system_id: password}, within SMPP 3.4 §4.1.1's lengths."""
    accounts: dict[str, str] = {}
    for value in values:
        system_id, sep, password = value.partition(":")
        if not sep or not system_id:
            raise ConfigError(f"--account {value!r}: expected SYSTEM_ID:PASSWORD")
        if len(system_id) > 15 or len(password) > 8:
            raise ConfigError(
                f"--account {value!r}: system_id is at most 15 characters and the password at "
                "most 8 (SMPP 3.4 §4.1.1)"
            )
        accounts[system_id] = password
    return accounts


def build_simulator(
    *,
    host: str,
    port: int,
    accounts: list[str],
    behaviour: str,
    delivered: float,
    undeliverable: float,
    rejected: float,
    expired: float,
    receipt_delay: str,
    id_format: str,
    receipt_id_format: str | None,
    seed: int | None,
    record_limit: int,
    deliver_window: int = 100,
    first_id: int | None = None,
) -> SmscSimulator:
    """The simulator the options describe; raises ConfigError with a readable message."""
    try:
        parsed_behaviour: Behaviour = parse_behaviour(behaviour)
    except ValueError as exc:
        raise ConfigError(f"--behaviour: {exc}") from exc
    try:
        delay = parse_delay(receipt_delay)
    except ValueError as exc:
        raise ConfigError(f"--receipt-delay: {exc}") from exc
    try:
        policy = ReceiptPolicy(
            delivered=delivered,
            undeliverable=undeliverable,
            rejected=rejected,
            expired=expired,
            delay=delay,
        )
    except ValueError as exc:
        raise ConfigError(f"receipt outcomes: {exc}") from exc
    formats: list[IdFormat] = []
    for option, value in (("--id-format", id_format), ("--receipt-id-format", receipt_id_format)):
        if value is None:
            continue
        if value not in ID_FORMATS:
            raise ConfigError(f"{option} {value!r}: expected one of {', '.join(ID_FORMATS)}")
        formats.append("hex" if value == "hex" else "decimal")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 0..65535")
    if not 1 <= deliver_window <= 10_000:
        raise ConfigError(f"--deliver-window {deliver_window}: expected 1..10000")
    if first_id is not None and not 0 <= first_id < 2**63:
        raise ConfigError(f"--first-id {first_id}: expected 0..{2**63 - 1}")
    return SmscSimulator(
        host,
        port,
        accounts=parse_accounts(accounts) if accounts else None,
        behaviour=parsed_behaviour,
        receipts=policy,
        seed=seed,
        id_format=formats[0],
        receipt_id_format=formats[1] if len(formats) > 1 else None,
        first_id=first_id,
        record_limit=record_limit,
        deliver_window=deliver_window,
    )


async def _serve(sim: SmscSimulator, quiet: bool) -> None:
    await sim.start()
    if not quiet:
        typer.echo(
            f"SMSC simulator listening on {sim.host}:{sim.port} "
            f"(accounts: {', '.join(sim.accounts) if sim.accounts else 'any'}; "
            f"behaviour: {sim.behaviour!r}; receipts: {sim.receipts!r})",
            err=True,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        if not quiet:
            typer.echo(f"stopped: {sim.stats()}", err=True)


def smsc_sim(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port (0: any free port).")] = 2775,
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account", help="SYSTEM_ID:PASSWORD allowed to bind (repeatable; none: anyone)."
        ),
    ] = None,
    behaviour: Annotated[
        str,
        typer.Option(
            help="happy | throttle:N | throttle-rate:R | slow:SECONDS | noresponse[:N] | "
            "disconnect:N[:HOLD] | error:STATUS[:N] | rejectbind[:STATUS]."
        ),
    ] = "happy",
    delivered: Annotated[float, typer.Option(help="Weight of DELIVRD receipts.")] = 1.0,
    undeliverable: Annotated[float, typer.Option(help="Weight of UNDELIV receipts.")] = 0.0,
    rejected: Annotated[float, typer.Option(help="Weight of REJECTD receipts.")] = 0.0,
    expired: Annotated[float, typer.Option(help="Weight of no receipt at all.")] = 0.0,
    receipt_delay: Annotated[
        str, typer.Option(help="Delay before each receipt: SECONDS, uniform:LOW:HIGH or exp:MEAN.")
    ] = "0",
    id_format: Annotated[str, typer.Option(help="Message ids: hex | decimal.")] = "hex",
    receipt_id_format: Annotated[
        str | None, typer.Option(help="Ids in receipts, if not as submit_sm_resp: hex | decimal.")
    ] = None,
    first_id: Annotated[
        int | None,
        typer.Option(
            help="First message id; each accepted segment gets the next (default: a random "
            "start). Two simulators with the same value issue the same ids, like carriers "
            "with plain counters."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the outcome draws.")] = None,
    record_limit: Annotated[
        int, typer.Option(help="Messages kept for inspection (0: none).")
    ] = 10_000,
    deliver_window: Annotated[
        int, typer.Option(help="Receipts (deliver_sm) outstanding per link without a response.")
    ] = 100,
    quiet: Annotated[bool, typer.Option("--quiet", help="No banner.")] = False,
) -> None:
    """Run the built-in SMSC simulator (an SMPP 3.4 server) in the foreground."""
    sim = build_simulator(
        host=host,
        port=port,
        accounts=account or [],
        behaviour=behaviour,
        delivered=delivered,
        undeliverable=undeliverable,
        rejected=rejected,
        expired=expired,
        receipt_delay=receipt_delay,
        id_format=id_format,
        receipt_id_format=receipt_id_format,
        seed=seed,
        record_limit=record_limit,
        deliver_window=deliver_window,
        first_id=first_id,
    )
    from cloudsms.transport import run

    try:
        run(_serve(sim, quiet))
    except OSError as exc:
        raise CloudSMSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
