"""What each consumer needs of the store: one narrow protocol per consumer.

The SQL store (``cloudsms.storage.store.Store``) implements all of them; the in-memory store
(``cloudsms.storage.memory.MemoryStore``) implements the pipeline ones (accept, dispatch,
reports, leases, configuration) and ``OptOutStore``. A consumer takes only its protocol, never
the concrete store, so it can be driven by either, and what it may touch is written down here.

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
    workers.inbound.InboundIntake             InboundSink       (store_inbound)
    workers.mo_pusher.MoPusher                MoOutbox          (claim_due_mo, record_mo_results)
    metrics.StoreCollector                    StatusSource
    services.audit.AuditTrail                 AuditSink
    services.operator.Operator                OperatorStore     (= CustomerAdmin + PriceAdmin …)
    api.smpp_server.CustomerSmppServer        SmppServerStore   (accounts, receipts, MOs)
    services.carrier.CarrierOperator          CarrierAdmin
    admin sign-in (API, console, portal)      AdminAuth
    admin reads (console, portal, API)        AdminQueries      (messages, reports, statistics)
    admin.context.AdminContext                AdminStore        (= all of the admin side)
    services.opt_outs.OptOutService           OptOutStore       (opt-out lists + keywords)

``AcceptStore``, ``PipelineStore`` and ``AdminStore`` are the unions a whole side needs (the
memory store is checked against ``PipelineStore``, the SQL store against both at the end of this
module). Method names and signatures are the store's own.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cloudsms.domain.inbound import (
    DueMo,
    InboundArrival,
    InboundNumber,
    InboundOutcome,
    InboundPart,
    InboundRecord,
)
from cloudsms.domain.models import (
    ApprovalStatus,
    ConfigSnapshot,
    CountryPolicy,
    PacketOutcome,
    PacketWrite,
)
from cloudsms.domain.opt_out import OptOut, OptVia
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
from cloudsms.domain.routing import (
    ConnectorConfig,
    ConnectorSettings,
    ConnectorStatus,
    RoutingTable,
)
from cloudsms.domain.smpp_accounts import SmppAccount, SmppMo, SmppReceipt
from cloudsms.metrics import StatusSource
from cloudsms.storage.admin_ops import (
    AdminToken,
    AuditEntry,
    FoundMessage,
    Lifecycle,
    MessageQuery,
    Role,
    Series,
    SeriesKey,
    Summary,
)
from cloudsms.storage.blacklist_ops import BlacklistEntry
from cloudsms.storage.carrier_ops import RouteRuleInfo
from cloudsms.storage.config_ops import CustomerRef
from cloudsms.storage.customer_ops import CustomerInfo
from cloudsms.storage.lease_ops import LeaseView, WorkerInfo
from cloudsms.storage.price_ops import LedgerEntry, PriceList
from cloudsms.storage.registration_ops import Registration, RegistrationKind
from cloudsms.storage.route_ops import RouteInfo

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
    """What DR_QUERY and MO_QUERY read: the caller's own messages among the SMS_UIDs asked for,
    and its own inbound messages."""

    def customer_messages(
        self, customer_id: int, sms_uids: Sequence[str]
    ) -> list[MessageRecord]: ...
    def customer_inbound(
        self, customer_id: int, since_mo_uid: str | None = ..., limit: int = ...
    ) -> list[InboundRecord]: ...


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


class InboundSink(Protocol):
    """What the inbound intake calls for carriers' MO deliver_sm (``storage.inbound_ops``)."""

    def store_inbound(
        self,
        connector_id: int,
        part: InboundPart,
        *,
        mo_uid: str,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = ...,
        policies: Mapping[int, CountryPolicy] | None = ...,
    ) -> InboundOutcome: ...

    def store_inbounds(
        self,
        arrivals: Sequence[InboundArrival],
        *,
        now_ms: int,
        dedup_window_ms: int,
        reply_window_ms: int,
        default_customer: str = ...,
        policies: Mapping[int, CountryPolicy] | None = ...,
    ) -> list[InboundOutcome]: ...

    def drop_stale_inbound_parts(self, older_than_ms: int) -> int:
        """Delete the held parts of messages whose newest part arrived before ``older_than_ms``
        (they never completed); how many parts went."""
        ...


class MoOutbox(Protocol):
    """The MO push outbox the MO pusher claims from and records into."""

    def claim_due_mo(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = ...,
        exclude_customers: Collection[int] = ...,
        claimer: int | None = ...,
        hold_ms: int = ...,
    ) -> list[DueMo]: ...

    def record_mo_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None: ...


class PipelineStore(
    AcceptStore,
    SnapshotSource,
    DispatchStore,
    ReportStore,
    ExpiryStore,
    InboundSink,
    MoOutbox,
    Protocol,
):
    """Everything one message's way through the platform needs: what ``MemoryStore`` is."""


# -- observability and operators --------------------------------------------------------------


class AuditSink(Protocol):
    """Where the audit trail writes (``services.audit.AuditTrail``)."""

    def record_audit(
        self, actor: str, action: str, target: str | None, detail: dict[str, Any] | None
    ) -> int: ...


# -- the admin side: operators' changes (services) and the console's reads (admin) ------------


class CustomerAdmin(Protocol):
    """Customers, their keys, networks and settings, and their money (``Operator``)."""

    def create_customer(
        self,
        name: str,
        *,
        auth_key: str,
        currency: str,
        price_list: str | None = ...,
        callback_url: str | None = ...,
        credit_limit_micros: int = ...,
        balance_micros: int = ...,
        default_sender: str | None = ...,
        actor: str = ...,
    ) -> CustomerInfo: ...
    def get_customer(self, ref: CustomerRef) -> CustomerInfo: ...
    def list_customers(self) -> list[CustomerInfo]: ...
    def set_auth_key(self, ref: CustomerRef, auth_key: str) -> None: ...
    def set_customer_enabled(self, ref: CustomerRef, enabled: bool) -> None: ...
    def set_callback_url(self, ref: CustomerRef, url: str | None) -> None: ...
    def set_callback_ca(self, ref: CustomerRef, pem: str | None) -> None: ...
    def set_client_cert_sha256(self, ref: CustomerRef, fingerprint: str | None) -> None: ...
    def set_credit_limit(self, ref: CustomerRef, micros: int) -> None: ...
    def set_default_sender(self, ref: CustomerRef, sender: str | None) -> None: ...
    def set_max_backlog(self, ref: CustomerRef, limit: int | None) -> None: ...
    def set_report_intermediate(self, ref: CustomerRef, enabled: bool) -> None: ...
    def set_customer_price_list(self, ref: CustomerRef, price_list: str | None) -> None: ...
    def add_network(self, ref: CustomerRef, cidr: str) -> None: ...
    def remove_network(self, ref: CustomerRef, cidr: str) -> None: ...
    def change_balance(
        self, ref: CustomerRef, delta_micros: int, *, actor: str, note: str | None = ...
    ) -> int: ...
    def ledger(self, ref: CustomerRef, limit: int = ...) -> list[LedgerEntry]: ...


class PriceAdmin(Protocol):
    """Price lists and their per-prefix prices."""

    def create_price_list(self, name: str, currency: str) -> PriceList: ...
    def set_price(self, price_list: str, prefix: str, micros: int) -> None: ...
    def remove_price(self, price_list: str, prefix: str) -> None: ...
    def get_price_list(self, name: str) -> PriceList: ...
    def list_price_lists(self) -> list[PriceList]: ...


class RouteAdmin(Protocol):
    """Routes (ROUTE_IDs), their grants to customers, and suspending one."""

    def create_route(
        self, name: str, *, latin1: bool = ..., description: str | None = ...
    ) -> RouteInfo: ...
    def list_routes(self) -> list[RouteInfo]: ...
    def grant_route(self, route: str, ref: CustomerRef) -> None: ...
    def revoke_route(self, route: str, ref: CustomerRef) -> None: ...
    def route_states(self) -> dict[str, bool]: ...
    def set_route_enabled(self, name: str, enabled: bool) -> None: ...


class BlacklistAdmin(Protocol):
    """Blacklisted numbers, platform-wide or per customer."""

    def add_blacklist(
        self, number: str, customer: CustomerRef | None = ..., note: str | None = ...
    ) -> None: ...
    def remove_blacklist(self, number: str, customer: CustomerRef | None = ...) -> None: ...
    def list_blacklist(self, customer: CustomerRef | None = ...) -> list[BlacklistEntry]: ...


class OptOutAdmin(Protocol):
    """Customers' opt-out lists (numbers that sent STOP): the SQL store and ``MemoryStore``."""

    def add_opt_out(
        self, customer: CustomerRef, number: str, *, via: OptVia, keyword: str | None = ...
    ) -> bool: ...
    def remove_opt_out(self, customer: CustomerRef, number: str) -> bool: ...
    def list_opt_outs(self, customer: CustomerRef | None = ...) -> list[OptOut]: ...


class OptOutStore(OptOutAdmin, Protocol):
    """What ``services.opt_outs.OptOutService`` needs: the lists and a destination's keywords."""

    def get_policy(self, country_code: int) -> CountryPolicy | None: ...


class PolicyAdmin(Protocol):
    """Per-destination registration rules."""

    def list_policies(self) -> list[CountryPolicy]: ...
    def get_policy(self, country_code: int) -> CountryPolicy | None: ...
    def upsert_policy(self, policy: CountryPolicy) -> None: ...
    def delete_policy(self, country_code: int) -> None: ...


class RegistrationAdmin(Protocol):
    """Signatures, templates and sender IDs: registered, then approved or rejected."""

    def add_signature(self, ref: CustomerRef, text: str) -> Registration: ...
    def add_template(
        self, ref: CustomerRef, body: str, country_code: int | None = ...
    ) -> Registration: ...
    def add_sender(
        self, ref: CustomerRef, sender: str, country_code: int | None = ...
    ) -> Registration: ...
    def approve_signature(self, id: int, note: str | None = ...) -> Registration: ...
    def reject_signature(self, id: int, note: str | None = ...) -> Registration: ...
    def approve_template(self, id: int, note: str | None = ...) -> Registration: ...
    def reject_template(self, id: int, note: str | None = ...) -> Registration: ...
    def approve_sender(self, id: int, note: str | None = ...) -> Registration: ...
    def reject_sender(self, id: int, note: str | None = ...) -> Registration: ...
    def list_registrations(
        self,
        kind: RegistrationKind,
        customer: CustomerRef | None = ...,
        status: ApprovalStatus | None = ...,
    ) -> list[Registration]: ...


class SmppAccountAdmin(Protocol):
    """Customers' SMPP accounts (``Operator``); the SMPP server reads them with ``list``."""

    def create_smpp_account(
        self,
        ref: CustomerRef,
        system_id: str,
        *,
        password_hash: str,
        binds: frozenset[str],
        max_sessions: int,
        throughput: int,
        route: str,
        intermediate_receipts: bool = ...,
        mo: bool | None = ...,
    ) -> SmppAccount: ...
    def get_smpp_account(self, system_id: str) -> SmppAccount: ...
    def list_smpp_accounts(self, customer: CustomerRef | None = ...) -> list[SmppAccount]: ...
    def set_smpp_password(self, system_id: str, password_hash: str) -> None: ...
    def set_smpp_account_enabled(self, system_id: str, enabled: bool) -> None: ...
    def set_smpp_account_mo(self, system_id: str, mo: bool) -> None: ...
    def remove_smpp_account(self, system_id: str) -> None: ...


class SmppAccountSource(Protocol):
    """What the SMPP server reads: every account, reloaded when the configuration moves."""

    def list_smpp_accounts(self, customer: CustomerRef | None = ...) -> list[SmppAccount]: ...


class SmppReceiptStore(Protocol):
    """The SMPP server's receipts: outbox rows of messages that asked for them over SMPP."""

    def claim_smpp_receipts(
        self, account_ids: Sequence[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppReceipt]: ...
    def record_smpp_receipts(
        self,
        *,
        now_ms: int,
        done: Sequence[int] = ...,
        skipped: Sequence[tuple[int, str]] = ...,
        retry: Sequence[tuple[int, int, str]] = ...,
    ) -> None: ...


class SmppMoStore(Protocol):
    """The SMPP server's MOs: inbound messages stored for delivery over SMPP (``smpp_mo_ops``)."""

    def claim_smpp_mo(
        self, customer_ids: Sequence[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppMo]: ...
    def record_smpp_mo(
        self,
        *,
        now_ms: int,
        done: Sequence[int] = ...,
        retry: Sequence[tuple[int, int, str]] = ...,
    ) -> None: ...


class SmppServerStore(SmppAccountSource, SmppReceiptStore, SmppMoStore, Protocol):
    """Everything ``api.smpp_server.CustomerSmppServer`` reads and writes."""


class InboundAdmin(Protocol):
    """Inbound numbers, customers' MO URLs and the inbound messages operators look at."""

    def add_inbound_number(self, number: str, keyword: str, customer: CustomerRef) -> None: ...
    def list_inbound_numbers(self, customer: CustomerRef | None = ...) -> list[InboundNumber]: ...
    def remove_inbound_number(self, number: str, keyword: str) -> None: ...
    def set_mo_url(self, ref: CustomerRef, url: str | None) -> None: ...
    def get_mo_url(self, ref: CustomerRef) -> str | None: ...
    def list_inbound_messages(
        self, customer: CustomerRef | None = ..., *, limit: int = ..., unrouted: bool = ...
    ) -> list[InboundRecord]: ...


class OperatorStore(
    InboundAdmin,
    CustomerAdmin,
    PriceAdmin,
    RouteAdmin,
    BlacklistAdmin,
    OptOutAdmin,
    PolicyAdmin,
    RegistrationAdmin,
    SmppAccountAdmin,
    Protocol,
):
    """Everything ``services.operator.Operator`` changes or reads."""


class CarrierAdmin(Protocol):
    """Connectors, route rules and connector status (``services.carrier.CarrierOperator``)."""

    def create_connector(
        self, name: str, settings: ConnectorSettings | None = ..., /, **fields: Any
    ) -> ConnectorConfig: ...
    def update_connector(self, name: str, /, **fields: Any) -> ConnectorConfig: ...
    def get_connector(self, name: str) -> ConnectorConfig: ...
    def list_connectors(self) -> list[ConnectorConfig]: ...
    def set_connector_enabled(self, name: str, enabled: bool) -> None: ...
    def remove_connector(self, name: str, *, force: bool = ...) -> int: ...
    def add_route_rule(
        self,
        route: str,
        connector: str,
        *,
        prefix: str = ...,
        priority: int = ...,
        weight: int = ...,
    ) -> RouteRuleInfo: ...
    def remove_route_rule(self, route: str, connector: str, *, prefix: str = ...) -> None: ...
    def list_route_rules(self, route: str | None = ...) -> list[RouteRuleInfo]: ...
    def connector_statuses(self) -> list[ConnectorStatus]: ...


class AdminAuth(Protocol):
    """Who is calling: admin tokens (API, console, ``cloudsms admin token``) and portal keys."""

    def create_admin_token(self, name: str, token_sha256: str, role: Role) -> AdminToken: ...
    def admin_token_by_digest(self, token_sha256: str) -> AdminToken | None: ...
    def admin_token_by_id(self, token_id: int) -> AdminToken | None: ...
    def touch_admin_token(self, token_id: int, now_ms: int) -> None: ...
    def list_admin_tokens(self) -> list[AdminToken]: ...
    def revoke_admin_token(self, name: str) -> None: ...
    def customer_id_for_key(self, auth_key: str) -> int | None: ...
    def customer_key_and_state(self, customer_id: int) -> tuple[str, bool] | None: ...


class AdminQueries(Protocol):
    """What the console, the portal and the API read: messages, reports, statistics, audit."""

    def now_ms(self) -> int: ...
    def search_messages(self, q: MessageQuery) -> list[FoundMessage]: ...
    def message_lifecycle(self, sms_uid: str, customer_id: int | None = ...) -> Lifecycle: ...
    def customer_reports(self, customer_id: int, limit: int = ...) -> list[dict[str, Any]]: ...
    def state_counts(
        self, *, customer_id: int | None = ..., since_ms: int | None = ...
    ) -> dict[str, int]: ...
    def fees(self, customer_id: int, since_ms: int) -> int: ...
    def summary(
        self, *, window_ms: int = ..., final_window_ms: int = ..., now_ms: int | None = ...
    ) -> Summary: ...
    def message_series(
        self,
        by: SeriesKey,
        *,
        since_ms: int,
        until_ms: int | None = ...,
        bucket_ms: int = ...,
        customer_id: int | None = ...,
        top: int = ...,
    ) -> Series: ...
    def list_audit(
        self,
        *,
        limit: int = ...,
        before_id: int | None = ...,
        actor: str | None = ...,
        target: str | None = ...,
    ) -> list[AuditEntry]: ...


class AdminStore(
    OperatorStore, CarrierAdmin, AdminAuth, AdminQueries, AuditSink, StatusSource, Protocol
):
    """Everything the admin listener (API, console, portal, its ``/metrics``) is given."""


__all__ = [
    "AcceptStore",
    "AdminAuth",
    "AdminQueries",
    "AdminStore",
    "AuditSink",
    "BacklogSource",
    "BlacklistAdmin",
    "CarrierAdmin",
    "CustomerAdmin",
    "DispatchSink",
    "DispatchStore",
    "ExpiryStore",
    "InboundAdmin",
    "InboundSink",
    "LeaseStore",
    "MessageQueries",
    "MoOutbox",
    "OperatorStore",
    "OptOutAdmin",
    "OptOutStore",
    "PacketSink",
    "PipelineStore",
    "PolicyAdmin",
    "PriceAdmin",
    "RegistrationAdmin",
    "ReportStore",
    "RouteAdmin",
    "SmppAccountAdmin",
    "SmppAccountSource",
    "SmppMoStore",
    "SmppReceiptStore",
    "SmppServerStore",
    "SnapshotSource",
    "StatusSource",
]


if TYPE_CHECKING:  # the SQL store implements the admin side whole (mypy checks this)
    from cloudsms.storage.store import Store

    def _sql_admin_conforms(store: Store) -> AdminStore:
        return store

    def _sql_smpp_conforms(store: Store) -> SmppServerStore:
        return store
