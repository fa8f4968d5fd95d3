"""`cloudsms serve` and `cloudsms demo`: running the platform.

``serve --role api|worker|all|dispatcher|reports|smpp`` picks what the process runs
(docs/operations.md shows the multi-process deployments). ``--reuse-port`` binds the UIP port with
``SO_REUSEPORT``, so several API processes on one host share one port and the kernel spreads
connections across them (a process that dies takes only its own connections with it).

``demo`` is what ``make run`` calls on a fresh machine: a SQLite file store, a demo customer with a
route and prices (created once, reused afterwards), its AUTH_KEY and a ready-to-paste curl command
printed, then the server in the foreground.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
from typing import Annotated, Any

import orjson
import typer

from cloudsms.cli._common import safe_url, say, state
from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError, NotFound
from cloudsms.roles import ACCEPT_ROLES
from cloudsms.services.carrier import CarrierOperator
from cloudsms.services.operator import Operator
from cloudsms.storage.interfaces import AdminStore
from cloudsms.storage.store import Store

DEMO_CUSTOMER = "demo"
DEMO_ROUTE = "DEMO"
DEMO_PRICE_LIST = "demo-hkd"
DEMO_CONNECTOR = "demo-simulator"
DEMO_SMSC_PORT = 2775
#: Port of the report listener the demo banner suggests (``cloudsms listen``'s default).
DEMO_LISTEN_PORT = 8080
#: The demo customer's inbound number (the simulator's MOs to it go to the customer).
DEMO_INBOUND_NUMBER = "12345"
#: Demo prices per segment (HKD): Hong Kong, Macau, Taiwan, Singapore, UK, US/Canada, Australia.
DEMO_PRICES = {
    "852": "0.05",
    "853": "0.06",
    "886": "0.07",
    "65": "0.04",
    "44": "0.08",
    "1": "0.03",
    "61": "0.09",
}


def _settings(ctx: typer.Context, host: str | None, port: int | None, **overrides: Any) -> Settings:
    cli = state(ctx)
    return Settings.load(
        file=cli.config, database_url=cli.database_url, host=host, port=port, **overrides
    )


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (CLOUDSMS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (CLOUDSMS_PORT).")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="api, worker, all, dispatcher (a worker without report pushing), reports"
            " (report pushing only) or smpp (the customers' SMPP server only) (CLOUDSMS_ROLE):"
            " what this process runs."
        ),
    ] = None,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port",
            help="Bind with SO_REUSEPORT: several API processes on one host share the port.",
        ),
    ] = False,
    processes: Annotated[
        str | None,
        typer.Option(
            help="Role all as 1 process, 2 (an api process and its worker) or auto: 2 with"
            " two cores or more (CLOUDSMS_PROCESSES)."
        ),
    ] = None,
) -> None:
    """Run the platform: the UIP endpoint and everything behind it (or part of it, by role)."""
    from cloudsms.roles import ROLES
    from cloudsms.runtime.layout import process_count
    from cloudsms.runtime.serve import serve as run_server

    settings = _settings(ctx, host, port, role=role, processes=processes)
    process_count(settings)  # refuse a bad value before anything starts
    if settings.role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    check_files(settings)
    Store.open(settings.database_url).close()  # migrate before the first request
    check_listen_ports(settings, reuse_port=reuse_port)
    config_file = _config_file(ctx)
    if reuse_port:
        serve_reuse_port(settings, config_file)
    else:
        run_server(settings, config_file=config_file)


def _config_file(ctx: typer.Context) -> str | None:
    """The settings file this command reads (a supervised worker process reads it too)."""
    import os

    file = state(ctx).config or os.environ.get("CLOUDSMS_CONFIG") or None
    return str(file) if file else None


#: Settings that name files the platform reads (TLS of the endpoint and of report pushes).
FILE_SETTINGS = (
    "tls_cert", "tls_key", "tls_client_ca", "report_client_cert", "report_client_key",
    "report_ca_file",
)  # fmt: skip


def check_files(settings: Settings) -> None:
    """Refuse to start, naming the setting and the file, when a file setting cannot be read.

    Otherwise OpenSSL reports "No such file or directory" without a name, from inside a server
    task (or, for the report settings, at the first HTTPS push).
    """
    for name in FILE_SETTINGS:
        path = getattr(settings, name)
        if not path:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"{name} (CLOUDSMS_{name.upper()}) {path}: {exc.strerror or exc}"
            ) from exc


def check_listen_ports(settings: Settings, *, reuse_port: bool = False) -> None:
    """Refuse to start, in one readable line, when a port this process listens on is taken.

    A listener would fail from inside its serve task, with a traceback chain through asyncio
    and the CLI. This probes each address the way the listeners bind it (a socket with
    SO_REUSEADDR) just before the servers start: a port taken in between still fails (the UIP
    listener as a ConfigError in the same words, the admin listener in uvicorn's).
    """
    listeners = []
    if not reuse_port:  # shared on purpose otherwise; reuse_port_socket reports its bind errors
        listeners.append(("UIP endpoint", settings.host, settings.port, "CLOUDSMS_PORT / --port"))
    if settings.admin_enabled:
        listeners.append(
            ("admin listener", settings.admin_host, settings.admin_port, "CLOUDSMS_ADMIN_PORT")
        )
    if settings.simulator_port:
        listeners.append(
            ("SMSC simulator", "127.0.0.1", settings.simulator_port, "CLOUDSMS_SIMULATOR_PORT")
        )
    for port, setting in (
        (settings.smpp_port, "CLOUDSMS_SMPP_PORT"),
        (settings.smpp_tls_port, "CLOUDSMS_SMPP_TLS_PORT"),
    ):
        if port and settings.role in ACCEPT_ROLES:
            listeners.append(("customers' SMPP server", settings.smpp_host, port, setting))
    for what, host, port, setting in listeners:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise ConfigError(
                    f"cannot listen on {host}:{port} for the {what}: {exc.strerror or exc}"
                    f" (another cloudsms running? choose another port with {setting})"
                ) from exc


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT (Linux ≥ 3.9): one per process, same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_reuse_port(settings: Settings, config_file: str | None = None) -> None:
    """Like ``cloudsms.runtime.serve.serve``, on a socket bound with SO_REUSEPORT."""
    from cloudsms.runtime.serve import serve as run_server

    try:
        sock = reuse_port_socket(settings.host, settings.port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {settings.host}:{settings.port} for the UIP endpoint with"
            f" SO_REUSEPORT: {exc.strerror or exc} (a process without --reuse-port holds it?)"
        ) from exc
    run_server(settings, config_file=config_file, fd=sock.fileno())


def demo(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port.")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up and print only.")] = False,
) -> None:
    """Set up a demo customer (once) and run the platform on the SQLite default."""
    settings = _settings(ctx, host, port)
    if not settings.simulator_port:
        settings = dataclasses.replace(settings, simulator_port=DEMO_SMSC_PORT)
    store = Store.open(settings.database_url)
    try:
        key = ensure_demo(store, settings)
    finally:
        store.close()
    scheme = "https" if settings.tls_cert else "http"
    url = f"{scheme}://{settings.host}:{settings.port}{settings.path}"
    packet = {
        "METHOD": "SMS_SEND_REQUEST",
        "TYPE": "REQUEST",
        "SERIAL": 1,
        "TIME": "2026-01-01 12:00:00",
        "AUTH_KEY": key,
        "ROUTE_ID": DEMO_ROUTE,
        "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
        "SMS_CONTENT": "Your verification code is 123456.",
        "SIGNATURE": "CloudSMS",
        "SIGNATURE_TYPE": 3,
        "VERSION": "2021-01-01",
    }
    database = safe_url(settings.database_url)
    typer.echo(f"database:  {database}")
    typer.echo(f"customer:  {DEMO_CUSTOMER}   route: {DEMO_ROUTE}")
    typer.echo(f"AUTH_KEY:  {key}")
    typer.echo(f"endpoint:  {url}\n\nSend an SMS:\n")
    body = orjson.dumps(packet).decode()
    typer.echo(f"curl -s {shlex.quote(url)} -d {shlex.quote(body)}\n")
    # Every command line below must work when pasted: the whole key (in the environment, so it
    # stays out of the process list), the store this demo uses.
    typer.echo(
        "Messages go to the built-in SMSC simulator on port "
        f"{settings.simulator_port} and come back DELIVERED. To receive the delivery reports:\n"
        f"  CLOUDSMS_AUTH_KEY={key} cloudsms listen --port {DEMO_LISTEN_PORT} &\n"
        f"  cloudsms --database-url {shlex.quote(database)} customers set-callback "
        f"{DEMO_CUSTOMER} http://127.0.0.1:{DEMO_LISTEN_PORT}/\n"
    )
    typer.echo(
        f"Handsets can answer: the number {DEMO_INBOUND_NUMBER} is the demo customer's. With the"
        " platform running, have the simulator send it a message (the listener above prints it):\n"
        f"  export CLOUDSMS_ADMIN_TOKEN=$(cloudsms --database-url {shlex.quote(database)}"
        " admin token create demo-mo)\n"
        f"  cloudsms simulator mo --admin-url http://{settings.admin_host}:{settings.admin_port}"
        f' --from +85261234567 --to {DEMO_INBOUND_NUMBER} --text "YES, see you at 3pm"\n'
    )
    if not no_serve:
        from cloudsms.runtime.serve import serve as run_server

        check_files(settings)
        check_listen_ports(settings)
        run_server(settings, config_file=_config_file(ctx))


def ensure_demo(store: AdminStore, settings: Settings) -> str:
    """Create the demo customer, prices, route and simulator carrier if missing.

    Returns the customer's AUTH_KEY. The route DEMO sends every destination to the embedded SMSC
    simulator, so a fresh install accepts, submits, gets receipts and reports end to end.
    """
    operator = Operator(store, actor="cli:demo")
    try:
        return operator.customer(DEMO_CUSTOMER).auth_key
    except NotFound:
        pass
    operator.create_price_list(DEMO_PRICE_LIST, "HKD")
    for prefix, amount in DEMO_PRICES.items():
        operator.set_price(DEMO_PRICE_LIST, prefix, amount)
    operator.create_route(DEMO_ROUTE, description="Demo route (built-in SMSC simulator)")
    system_id, _, password = settings.simulator_account.partition(":")
    carrier = CarrierOperator(store)
    carrier.add_connector(
        DEMO_CONNECTOR,
        host="127.0.0.1",
        port=str(settings.simulator_port),
        system_id=system_id,
        password=password,
    )
    carrier.add_rule(DEMO_ROUTE, DEMO_CONNECTOR)
    created = operator.create_customer(
        DEMO_CUSTOMER, currency="HKD", price_list=DEMO_PRICE_LIST, balance="1000"
    )
    operator.grant_route(DEMO_ROUTE, DEMO_CUSTOMER)
    operator.add_inbound_number(DEMO_INBOUND_NUMBER, customer=DEMO_CUSTOMER)
    say(f"created demo customer {DEMO_CUSTOMER!r} with 1000.00 HKD")
    return created.auth_key


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
