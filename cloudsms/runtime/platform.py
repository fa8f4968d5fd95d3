"""The platform's ASGI application: declared routes and a lifespan that owns every component.

``create_app(settings)`` opens the store (running migrations) and starts, by ``settings.role``:

* ``api``: the group-commit writer, the configuration cache, the backlog gauge and the UIP route;
* ``worker``: the configuration cache, the dispatcher (SMPP links, routing, receipts), the
  report pusher and the expiry job;
* ``dispatcher``: a worker without the report pusher and the expiry job;
* ``reports``: the report pusher and the expiry job only, under a worker lease of its own
  (``cloudsms.workers.report_lease``), so report pushing can have a core of its own;
* ``all`` (the default): api and worker, in one process.

On PostgreSQL any number of processes of any role share one database (docs/operations.md): each
worker owns a fair share of the carrier connectors by lease (``cloudsms.workers.leases``), and
processes wake each other with ``LISTEN``/``NOTIFY`` (``cloudsms.storage.notify``): an API process
notifies the workers after each accepted packet is committed, a worker notifies the others after
handing messages to their connectors. Polling stays as the fallback (and is the only mechanism on
SQLite, where everything is one process and wakes up in memory).

Shutdown runs in reverse order: the API stops taking packets (Busy) and drains the writer before
the dispatcher lets its links go, so no accepted packet is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from cloudsms.api.backlog import BacklogGauge
from cloudsms.api.errors import HANDLERS
from cloudsms.api.uip import UipEndpoint, UipService
from cloudsms.config import Settings
from cloudsms.domain.pipeline import DispatchResult
from cloudsms.exceptions import ConfigError
from cloudsms.services.config_cache import ConfigCache
from cloudsms.simulator.server import SmscSimulator
from cloudsms.storage.notify import DISPATCH, REPORTS, Listener, Notifier, libpq_url
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter
from cloudsms.workers.dispatcher import Dispatcher
from cloudsms.workers.expiry import ExpiryWorker
from cloudsms.workers.leases import DISPATCHING_ROLES
from cloudsms.workers.report_lease import ReportsLease
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings

log = logging.getLogger("cloudsms.server")

ROLES = ("all", "api", "worker", "dispatcher", "reports")
#: Roles whose processes push delivery reports (those that dispatch: leases.DISPATCHING_ROLES).
REPORT_ROLES = frozenset({"all", "worker", "reports"})


@dataclass
class Platform:
    """The running components; tests and other listeners reach them as ``app.state.platform``."""

    settings: Settings
    store: Store
    writer: GroupCommitWriter
    config: ConfigCache
    backlog: BacklogGauge
    service: UipService
    dispatcher: Dispatcher | None
    pusher: ReportPusher | None
    expiry: ExpiryWorker | None
    #: PostgreSQL only (and with ``pg_notify``): cross-process wake-ups.
    notifier: Notifier | None = None
    listener_url: str | None = None
    listener: Listener | None = None
    #: Role ``reports`` only: the worker id its report claims carry.
    reports_lease: ReportsLease | None = None

    @property
    def serves_api(self) -> bool:
        return self.settings.role in ("all", "api")


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    if settings.role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    store = store or Store.open(settings.database_url)
    writer = GroupCommitWriter(
        store,
        replay_window_ms=settings.replay_window_s * 1000,
        max_batch=settings.group_commit_max,
    )
    config = ConfigCache(store, poll_s=settings.config_poll_s)
    backlog = BacklogGauge(store)
    dispatcher = pusher = expiry = None
    url = libpq_url(store.engine) if settings.pg_notify else None
    notifier = Notifier(url) if url else None
    reports_lease = None
    if settings.role in REPORT_ROLES:
        hooks = webhook_settings(settings)
        pusher = ReportPusher(store, hooks)
        expiry = ExpiryWorker(store, hooks.expire_after_s, hooks.expiry_interval_s, pusher=pusher)
    if settings.role in DISPATCHING_ROLES:
        dispatcher = Dispatcher(
            store,
            config,
            batch=settings.dispatch_batch,
            on_committed=_on_reported(pusher, notifier),
            role=settings.role,
            lease_s=settings.lease_s,
            renew_s=settings.lease_s / 5,
            notify_others=(lambda: notifier.notify(DISPATCH)) if notifier is not None else None,
        )
    if pusher is not None:
        if dispatcher is not None:
            recorder = dispatcher.recorder
            pusher.claimer = lambda: recorder.claimer
        else:
            lease = reports_lease = ReportsLease(
                store, lease_s=settings.lease_s, renew_s=settings.lease_s / 5
            )
            pusher.claimer = lambda: lease.claimer
    service = UipService(
        settings,
        config,
        writer,
        backlog,
        store=store,
        on_accepted=_on_accepted(dispatcher, notifier),
    )
    return Platform(
        settings, store, writer, config, backlog, service, dispatcher, pusher, expiry,
        notifier=notifier, listener_url=url, reports_lease=reports_lease,
    )  # fmt: skip


def _on_reported(
    pusher: ReportPusher | None, notifier: Notifier | None
) -> Callable[[DispatchResult], None] | None:
    """After a dispatch commit that enqueued reports: wake our pusher, or (role ``dispatcher``
    on PostgreSQL) the ``reports`` processes; on SQLite those poll the outbox."""
    if pusher is not None:
        wake = pusher.wake
        return lambda result: wake() if result.reported else None
    if notifier is not None:
        return lambda result: notifier.notify(REPORTS) if result.reported else None
    return None


def _on_accepted(
    dispatcher: Dispatcher | None, notifier: Notifier | None
) -> Callable[[], None] | None:
    """After each stored packet: wake our dispatcher, and (PostgreSQL) every other worker."""
    if notifier is None:
        return dispatcher.wake if dispatcher is not None else None
    if dispatcher is None:
        return lambda: notifier.notify(DISPATCH)

    def both() -> None:
        dispatcher.wake()
        notifier.notify(DISPATCH)

    return both


async def start_simulator(settings: Settings) -> SmscSimulator | None:
    """The embedded SMSC simulator (sandbox carrier), when ``simulator_port`` is set."""
    if not settings.simulator_port:
        return None
    system_id, _, password = settings.simulator_account.partition(":")
    simulator = SmscSimulator("127.0.0.1", settings.simulator_port, accounts={system_id: password})
    await simulator.start()
    log.info(
        "listening on smpp://%s:%d (built-in SMSC simulator, system_id %s)",
        simulator.host,
        simulator.port,
        system_id,
    )
    return simulator


def webhook_settings(settings: Settings) -> WebhookSettings:
    """The report pusher's knobs from the platform settings."""
    return WebhookSettings(
        push_timeout_s=settings.report_push_timeout_s,
        lease_s=max(settings.report_lease_s, 3 * settings.report_push_timeout_s),
        concurrency_per_host=settings.report_concurrency_per_host,
        max_queued_per_customer=settings.report_queue_per_customer,
        claim_batch=max(500, settings.report_queue_per_customer),
        retry_base_s=settings.report_retry_base_s,
        retry_max_delay_s=settings.report_retry_max_delay_s,
        retry_give_up_after_s=settings.report_retry_give_up_after_s,
        expire_after_s=settings.report_expire_after_s,
        expiry_interval_s=min(60.0, max(0.2, settings.report_expire_after_s / 10)),
        client_cert=settings.report_client_cert,
        client_key=settings.report_client_key,
        ca_file=settings.report_ca_file,
        source_address=settings.report_source_address,
    )


def _listen(url: str, platform: Platform) -> Listener:
    """LISTEN for work meant for this process's dispatcher and pusher (call on its loop)."""
    loop = asyncio.get_running_loop()
    dispatcher, pusher = platform.dispatcher, platform.pusher
    callbacks: dict[str, Callable[[], None]] = {}
    if dispatcher is not None:

        def wake_dispatcher() -> None:
            loop.call_soon_threadsafe(dispatcher.wake)

        callbacks[DISPATCH] = wake_dispatcher
    if pusher is not None:
        callbacks[REPORTS] = pusher.wake
    return Listener(url, callbacks)


def create_app(settings: Settings, platform: Platform | None = None) -> Starlette:
    platform = platform or build_platform(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        simulator = await start_simulator(settings)
        if platform.notifier is not None:
            platform.notifier.start()
        if platform.serves_api:
            platform.writer.start()
        await platform.config.start()
        if platform.serves_api:
            await platform.backlog.start()
        if platform.dispatcher is not None:
            await platform.dispatcher.start()
        if platform.reports_lease is not None:
            await platform.reports_lease.start()
        if platform.pusher is not None:
            await platform.pusher.start()
        if platform.expiry is not None:
            await platform.expiry.start()
        if platform.listener_url and (
            platform.dispatcher is not None or platform.pusher is not None
        ):
            platform.listener = _listen(platform.listener_url, platform)
            platform.listener.start()
        try:
            yield
        finally:
            platform.service.draining = True
            if platform.listener is not None:
                await asyncio.to_thread(platform.listener.close)
            if platform.serves_api:
                await platform.backlog.stop()
                await platform.writer.close()
            if platform.dispatcher is not None:
                await platform.dispatcher.stop()
            if platform.expiry is not None:
                await platform.expiry.stop()
            if platform.pusher is not None:
                await platform.pusher.stop()
            if platform.reports_lease is not None:
                await platform.reports_lease.stop()
            await platform.config.stop()
            if platform.notifier is not None:
                await asyncio.to_thread(platform.notifier.close)
            platform.store.close()
            if simulator is not None:
                await simulator.stop()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        ok = platform.config.current.snapshot.version >= 0 and not platform.service.draining
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    if platform.serves_api:
        endpoint = UipEndpoint(platform.service, max_body_bytes=settings.max_body_bytes)
        routes.insert(0, Route(settings.path, endpoint))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=dict(HANDLERS))
    app.state.platform = platform
    return app
