"""What each consumer needs of the store: one narrow protocol per consumer.

The SQL store (``cloudsms.storage.store.Store``) implements all of them; the in-memory store
(``cloudsms.storage.memory.MemoryStore``) implements the pipeline ones (accept, dispatch,
reports, leases, configuration). A consumer takes only its protocol, never the concrete store,
so it can be driven by either, and what it may touch is written down here.

    consumer                                  protocol
    ----------------------------------------  ------------------------------------------------
    storage.writer.GroupCommitWriter          PacketSink        (accept_packets)
    api.uip.UipService (DR_QUERY)             MessageQueries
    api.backlog.BacklogGauge                  BacklogSource
    services.config_cache.ConfigCache         SnapshotSource    (configuration: version + load)
    workers.dispatcher.Dispatcher             DispatchStore     (= DispatchSink + LeaseStore …)
    workers.recorder.DispatchRecorder         DispatchSink      (record_dispatch)
    workers.leases.LeaseKeeper                LeaseStore
    workers.webhooks.ReportPusher             ReportStore
    workers.expiry.ExpiryWorker               ExpiryStore
    metrics.StoreCollector                    StatusSource
    services.audit.AuditTrail                 AuditSink
    admin (API, console, portal)              the SQL Store itself (not narrowed yet: ~57 reads)

``AcceptStore`` and ``PipelineStore`` are the unions a whole side needs (the memory store is
checked against ``PipelineStore``). Method names and signatures are the store's own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from cloudsms.domain.models import ConfigSnapshot, PacketOutcome, PacketWrite
from cloudsms.domain.pipeline import (
    DispatchResult,
    DueReport,
    LocalClaim,
    MessageRecord,
    OutboundMessage,
    ReceiptEvent,
    ReportClaim,
    ReportResult,
    SubmitOutcome,
)
from cloudsms.domain.routing import ConnectorStatus, RoutingTable
from cloudsms.metrics import StatusSource
from cloudsms.storage.lease_ops import LeaseView, WorkerInfo

# -- accept: the UIP endpoint and its group-commit writer -------------------------------------


class PacketSink(Protocol):
    """What the group-commit writer needs: store a batch of packets in one transaction."""

    def accept_packets(
        self,
        writes: Sequence[PacketWrite],
        *,
        replay_window_ms: int,
        claim: LocalClaim | None = None,
    ) -> list[PacketOutcome]: ...


class MessageQueries(Protocol):
    """What DR_QUERY reads: the caller's own messages among the SMS_UIDs asked for."""

    def customer_messages(
        self, customer_id: int, sms_uids: Sequence[str]
    ) -> list[MessageRecord]: ...


class BacklogSource(Protocol):
    """What the backlog gauge re-reads: messages not yet with a carrier, per customer."""

    def backlog_by_customer(self) -> dict[int, int]: ...


class AcceptStore(PacketSink, MessageQueries, BacklogSource, Protocol):
    """Everything the accept side (UIP endpoint, writer, backlog gauge) reads or writes."""


# -- configuration ----------------------------------------------------------------------------


class SnapshotSource(Protocol):
    """What the configuration cache polls (the version) and loads when it moved."""

    def config_version(self) -> int: ...
    def load_snapshot(self) -> ConfigSnapshot: ...
    def load_routing(self) -> RoutingTable: ...


# -- leases -----------------------------------------------------------------------------------


class LeaseStore(Protocol):
    """Worker liveness and connector ownership (``workers.leases.LeaseKeeper``)."""

    def register_worker(
        self, *, name: str, host: str, pid: int, role: str, lease_ms: int
    ) -> int: ...
    def renew_leases(
        self, worker_id: int, lease_ms: int, available: Mapping[int, bool]
    ) -> bool: ...
    def retire_worker(self, worker_id: int) -> None: ...
    def expire_workers(self, worker_ids: Collection[int]) -> int: ...
    def list_workers(self, *, live_only: bool = ...) -> list[WorkerInfo]: ...
    def prune_workers(self, older_than_ms: int) -> int: ...
    def lease_view(self) -> LeaseView: ...
    def acquire_connectors(
        self, worker_id: int, connector_ids: Collection[int], lease_ms: int, *, limit: int
    ) -> list[int]: ...
    def release_connectors(self, worker_id: int, connector_ids: Collection[int]) -> None: ...
    def recover_in_flight(self) -> int: ...
    def recover_claimed_reports(self, now_ms: int) -> int: ...


# -- dispatch ---------------------------------------------------------------------------------


class DispatchSink(Protocol):
    """What the dispatch recorder needs: apply outcomes and receipts in one transaction."""

    def record_dispatch(
        self,
        outcomes: list[SubmitOutcome],
        receipts: list[ReceiptEvent],
        now_ms: int,
        *,
        claimer: int | None = None,
        report_claim: ReportClaim | None = None,
    ) -> DispatchResult: ...


class DispatchStore(DispatchSink, LeaseStore, Protocol):
    """What the dispatcher needs: claims, outcomes, recovery, leases, connector status."""

    def claim_due(
        self,
        now_ms: int,
        limit: int,
        *,
        claimer: int | None = None,
        leave_to: Collection[int] = (),
    ) -> list[OutboundMessage]: ...
    def claim_handed_off(
        self, now_ms: int, claimer: int, limits: Mapping[int, int]
    ) -> dict[int, list[OutboundMessage]]: ...
    def write_connector_status(self, rows: Sequence[ConnectorStatus]) -> int: ...


# -- reports ----------------------------------------------------------------------------------


class ReportStore(Protocol):
    """The outbox operations the report pusher uses."""

    def claim_due_reports(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = ...,
        exclude_customers: Sequence[int] = ...,
        claimer: int | None = ...,
        hold_ms: int = ...,
    ) -> list[DueReport]: ...

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None: ...


class ExpiryStore(Protocol):
    """What the expiry job calls: SUBMITTED too long without a final receipt → EXPIRED."""

    def expire_overdue(self, now_ms: int, older_than_ms: int, *, limit: int = ...) -> int: ...


class PipelineStore(AcceptStore, SnapshotSource, DispatchStore, ReportStore, ExpiryStore, Protocol):
    """Everything one message's way through the platform needs: what ``MemoryStore`` is."""


# -- observability and operators --------------------------------------------------------------


class AuditSink(Protocol):
    """Where the audit trail writes (``services.audit.AuditTrail``)."""

    def record_audit(
        self, actor: str, action: str, target: str | None, detail: dict[str, Any] | None
    ) -> int: ...


__all__ = [
    "AcceptStore",
    "AuditSink",
    "BacklogSource",
    "DispatchSink",
    "DispatchStore",
    "ExpiryStore",
    "LeaseStore",
    "MessageQueries",
    "PacketSink",
    "PipelineStore",
    "ReportStore",
    "SnapshotSource",
    "StatusSource",
]
