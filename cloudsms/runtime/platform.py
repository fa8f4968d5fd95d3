"""The composition root: which components a process runs, how they wake each other, start, stop.

``build_platform(settings)`` opens the store (running migrations) and builds, by ``settings.role``
(the role table, ``cloudsms.roles``):

* ``api``: the group-commit writer, the configuration cache, the backlog gauge and the UIP service
  (and, with ``smpp_port``, the customers' SMPP server over the same writer and state);
* ``worker``: the configuration cache, the dispatcher (SMPP links, routing, receipts), the
  report pusher and the expiry job;
* ``dispatcher``: a worker without the report pusher and the expiry job;
* ``reports``: the report pusher and the expiry job only, under a worker lease of its own
  (``cloudsms.workers.report_lease``), so report pushing can have a core of its own;
* ``smpp``: the customers' SMPP server with what it accepts through (writer, configuration cache,
  backlog gauge, the UIP service's state), its UIP listener serving health checks only;
* ``all`` (the default): api and worker, in one process.

On PostgreSQL any number of processes of any role share one database (docs/operations.md): each
worker owns a fair share of the carrier connectors by lease (``cloudsms.workers.leases``), and
processes wake each other with ``LISTEN``/``NOTIFY`` (``cloudsms.storage.notify``): an API process
notifies the workers after each accepted packet is committed, a worker notifies the others after
handing messages to their connectors. Polling stays as the fallback (and is the only mechanism on
SQLite, where everything is one process and wakes up in memory).

``Platform.start()`` starts the components in the order of ``Platform.components()``;
``Platform.stop()`` stops the started ones in reverse: the API stops taking packets (Busy) and
drains the writer before the report pusher and the dispatcher stop and the dispatcher lets its
links go, so no accepted packet is left behind; the store closes after everything that uses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudsms.api.backlog import BacklogGauge
from cloudsms.api.smpp_server import CustomerSmppServer
from cloudsms.api.uip import UipService
from cloudsms.config import Settings
from cloudsms.domain.pipeline import DispatchResult
from cloudsms.exceptions import ConfigError
from cloudsms.roles import ACCEPT_ROLES, API_ROLES, DISPATCHING_ROLES, REPORT_ROLES, ROLES
from cloudsms.runtime.components import (
    Closing,
    Component,
    Draining,
    EmbeddedSimulator,
    InThread,
    Wakeups,
    Writing,
)
from cloudsms.runtime.tls import ssl_context
from cloudsms.services.config_cache import ConfigCache
from cloudsms.storage.gate import Gate, ThreadGate, gate_for
from cloudsms.storage.notify import DISPATCH, REPORTS, Listener, Notifier, libpq_url
from cloudsms.storage.store import Store
from cloudsms.storage.writer import GroupCommitWriter
from cloudsms.workers.dispatcher import Dispatcher
from cloudsms.workers.expiry import ExpiryWorker
from cloudsms.workers.inbound import InboundIntake
from cloudsms.workers.mo_parts import MoPartsSweeper
from cloudsms.workers.mo_pusher import MoPusher
from cloudsms.workers.report_lease import ReportsLease
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings

log = logging.getLogger("cloudsms.server")


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
    #: SMS_PUSH_MO to customers (the roles that push reports).
    mo_pusher: MoPusher | None = None
    #: Deletes parts of MOs that never completed (the roles that dispatch, with the intake).
    mo_parts: MoPartsSweeper | None = None
    #: PostgreSQL only (and with ``pg_notify``): cross-process wake-ups.
    notifier: Notifier | None = None
    listener_url: str | None = None
    #: Role ``reports`` only: the worker id its report claims carry.
    reports_lease: ReportsLease | None = None
    #: The customers' SMPP server, when ``smpp_port`` is set (API roles).
    smpp: CustomerSmppServer | None = None
    #: Where the hot store calls run (``cloudsms.storage.gate``), closed with the store.
    gate: Gate = field(default_factory=ThreadGate)
    #: Started after everything else, stopped first: the supervised worker process of the
    #: two-process layout (``cloudsms.runtime.layout``).
    companions: list[Component] = field(default_factory=list)
    #: The built-in SMSC simulator (runs when ``simulator_port`` is set).
    simulator: EmbeddedSimulator = field(init=False, repr=False)
    #: The components started by :meth:`start`, in order (:meth:`stop` empties it).
    started: list[Component] = field(default_factory=list)
    _wakeups: Wakeups | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.simulator = EmbeddedSimulator(self.settings)

    @property
    def serves_api(self) -> bool:
        return self.settings.role in API_ROLES

    @property
    def listener(self) -> Listener | None:
        """The PostgreSQL listener, while the platform runs one."""
        return self._wakeups.listener if self._wakeups is not None else None

    def ready(self) -> bool:
        """Configuration loaded and not draining: what ``/ready`` answers."""
        return self.config.current.snapshot.version >= 0 and not self.service.draining

    def components(self) -> list[Component]:
        """What this process runs, in start order (each after what it uses)."""
        parts: list[Component] = [self.simulator, Closing(self.store.close)]
        parts.append(Closing(self.gate.close))
        if self.notifier is not None:
            parts.append(InThread(self.notifier))
        parts.append(self.config)
        workers = (
            self.dispatcher, self.reports_lease, self.pusher, self.mo_pusher, self.expiry,
            self.mo_parts,
        )  # fmt: skip
        for worker in workers:
            if worker is not None:
                parts.append(worker)
        if self.settings.role in ACCEPT_ROLES:
            parts += [Writing(self.writer), self.backlog]
            if self.smpp is not None:  # stopped before the writer: its last submits commit
                parts.append(self.smpp)
        if self.listener_url and (self.dispatcher is not None or self.pusher is not None):
            self._wakeups = Wakeups(self.listener_url, self.dispatcher, self.pusher)
            parts.append(self._wakeups)
        parts.append(Draining(self.service))
        return parts + self.companions

    async def start(self) -> None:
        """Start every component in order; if one fails, stop those already started."""
        for component in self.components():
            try:
                await component.start()
            except BaseException:
                await self.stop()
                raise
            self.started.append(component)

    async def stop(self) -> None:
        """Stop the started components in reverse order."""
        while self.started:
            await self.started.pop().stop()


def build_platform(settings: Settings, store: Store | None = None) -> Platform:
    if settings.role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    store = store or Store.open(settings.database_url)
    gate = gate_for(store.write_lock)  # where the hot store calls run (storage/gate.py)
    writer = GroupCommitWriter(
        store,
        replay_window_ms=settings.replay_window_s * 1000,
        max_batch=settings.group_commit_max,
        gate=gate,
    )
    config = ConfigCache(store, poll_s=settings.config_poll_s)
    backlog = BacklogGauge(store)
    dispatcher = pusher = expiry = mo_pusher = mo_parts = None
    url = libpq_url(store.engine) if settings.pg_notify else None
    notifier = Notifier(url) if url else None
    reports_lease = None
    if settings.role in REPORT_ROLES:
        hooks = webhook_settings(settings)
        pusher = ReportPusher(store, hooks)
        pusher.gate = gate
        mo_pusher = MoPusher(store, hooks)
        mo_pusher.gate = gate
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
    if dispatcher is not None:
        dispatcher.recorder.gate = gate
        writer.intake = dispatcher  # messages due now are claimed as they are accepted
        dispatcher.inbound = InboundIntake.from_settings(store, settings)
        dispatcher.inbound.gate = gate  # MOs group-committed like receipts
        # STOP / START applied in the MO's transaction, keywords from the configuration in memory
        dispatcher.inbound.policies = lambda: config.current.snapshot.policies
        mo_parts = MoPartsSweeper(store, settings.mo_parts_ttl_s)
        if mo_pusher is not None:
            wake_mo = mo_pusher.wake
            dispatcher.inbound.on_stored.append(
                lambda mo: wake_mo() if mo.channel == "http" else None
            )
    if pusher is not None:
        if dispatcher is not None:
            recorder = dispatcher.recorder
            recorder.report_claims = pusher.report_claim  # reports claimed as they are enqueued
            pusher.claimer = lambda: recorder.claimer
        else:
            lease = reports_lease = ReportsLease(
                store, lease_s=settings.lease_s, renew_s=settings.lease_s / 5
            )
            pusher.claimer = lambda: lease.claimer
        if mo_pusher is not None:
            mo_pusher.claimer = pusher.claimer
    service = UipService(
        settings,
        config,
        writer,
        backlog,
        store=store,
        on_accepted=_on_accepted(dispatcher, notifier),
    )
    smpp = smpp_server(settings, service, store)
    if smpp is not None:
        smpp.receipts.gate = gate
        smpp.mo.gate = gate
        if dispatcher is not None and dispatcher.inbound is not None:
            # An MO stored in this process for an SMPP session goes out at once (other
            # processes' SMPP servers find it at their next poll).
            wake_smpp_mo = smpp.mo.wake
            dispatcher.inbound.on_stored.append(
                lambda mo: wake_smpp_mo() if mo.channel == "smpp" else None
            )
    return Platform(
        settings, store, writer, config, backlog, service, dispatcher, pusher, expiry,
        mo_pusher=mo_pusher, mo_parts=mo_parts, notifier=notifier, listener_url=url,
        reports_lease=reports_lease, smpp=smpp, gate=gate,
    )  # fmt: skip


def smpp_server(settings: Settings, service: UipService, store: Store) -> CustomerSmppServer | None:
    """The customers' SMPP server (plain and / or TLS) for an API role, when a port is set."""
    if settings.role not in ACCEPT_ROLES:
        return None
    if not (settings.smpp_port or settings.smpp_tls_port):
        if settings.role not in API_ROLES:
            raise ConfigError("role smpp needs smpp_port or smpp_tls_port")
        return None
    tls = None
    if settings.smpp_tls_port:
        if not settings.tls_cert:
            raise ConfigError("smpp_tls_port needs tls_cert and tls_key")
        tls = ssl_context(settings)
    return CustomerSmppServer(
        service,
        store,
        settings.smpp_host,
        settings.smpp_port,
        window=settings.smpp_window,
        receipt_window=settings.smpp_receipt_window,
        tls_port=settings.smpp_tls_port,
        tls_context=tls,
        enquire_link_s=settings.smpp_enquire_link_s,
    )


def _on_reported(
    pusher: ReportPusher | None, notifier: Notifier | None
) -> Callable[[DispatchResult], None] | None:
    """After a dispatch commit that enqueued reports: wake our pusher, or (role ``dispatcher``
    on PostgreSQL) the ``reports`` processes; on SQLite those poll the outbox."""
    if pusher is not None:
        hand_over, wake = pusher.take_claimed, pusher.wake

        def reported(result: DispatchResult) -> None:
            if result.claimed_reports:
                hand_over(result.claimed_reports)
            if len(result.claimed_reports) < len(result.reported):
                wake()  # some were left to the pusher's own claim

        return reported
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


def webhook_settings(settings: Settings) -> WebhookSettings:
    """The report pusher's knobs from the platform settings."""
    return WebhookSettings.from_settings(settings)
