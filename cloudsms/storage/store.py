"""The store: every named database operation of cloudsms behind one object.

``Store`` composes the operation groups, each a mixin over ``base.StoreBase`` with one subject.
No group inherits from another: where one needs another's SQL inside its own transaction (the
dispatcher enqueueing a report), it calls a module function with its connection
(``report_enqueue.enqueue_report``). Both engines (SQLite, PostgreSQL) sit behind the same
names; an operation picks the fastest SQL form for its engine.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from cloudsms.exceptions import StoreError
from cloudsms.storage import migrate as _migrate
from cloudsms.storage.admin_ops import AdminOps
from cloudsms.storage.blacklist_ops import BlacklistOps
from cloudsms.storage.carrier_ops import CarrierOps
from cloudsms.storage.customer_ops import CustomerOps
from cloudsms.storage.dispatch_ops import DispatchOps
from cloudsms.storage.engine import describe_failure, make_engine
from cloudsms.storage.expiry_ops import ExpiryOps
from cloudsms.storage.inbound_ops import InboundOps
from cloudsms.storage.lease_ops import LeaseOps
from cloudsms.storage.messages import MessageOps
from cloudsms.storage.opt_out_ops import OptOutOps
from cloudsms.storage.price_ops import PriceOps
from cloudsms.storage.query_ops import QueryOps
from cloudsms.storage.registration_ops import RegistrationOps
from cloudsms.storage.report_enqueue import ReportEnqueueOps
from cloudsms.storage.report_ops import ReportOps
from cloudsms.storage.report_query_ops import ReportQueryOps
from cloudsms.storage.route_ops import RouteOps
from cloudsms.storage.smpp_account_ops import SmppAccountOps
from cloudsms.storage.smpp_mo_ops import SmppMoOps
from cloudsms.storage.smpp_receipt_ops import SmppReceiptOps
from cloudsms.storage.snapshot_ops import SnapshotOps


class Store(
    # the accept path and message queries
    MessageOps,
    QueryOps,
    # operator configuration (contract: config_ops) and the snapshot the API reads
    CustomerOps,
    PriceOps,
    RouteOps,
    BlacklistOps,
    OptOutOps,
    RegistrationOps,
    SmppAccountOps,
    InboundOps,
    SnapshotOps,
    # carrier connectors, route rules and connector status
    CarrierOps,
    # the carrier side: claims, submit outcomes, receipts; expiry of unanswered messages
    DispatchOps,
    ExpiryOps,
    # the report outbox: written with the change it reports, worked by the pusher, counted
    ReportEnqueueOps,
    ReportOps,
    ReportQueryOps,
    SmppReceiptOps,
    SmppMoOps,
    # admin tokens, the audit trail, the console's searches and statistics
    AdminOps,
    # worker liveness and connector ownership (several worker processes on one PostgreSQL)
    LeaseOps,
):
    """The single entry point to the database for the API, the workers, the CLI and the tests.

    Example::

        store = Store.open("sqlite:///var/lib/cloudsms/cloudsms.db")   # or postgresql://…
        try:
            outcomes = store.accept_packets(writes, replay_window_ms=86_400_000)
            snapshot = store.load_snapshot()
        finally:
            store.close()

    The methods are blocking: call them from a worker thread (``asyncio.to_thread``), or for the
    accept path through ``cloudsms.storage.writer.GroupCommitWriter``, never on the event loop.
    """

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and, unless ``migrate=False``, bring its schema to the newest.

        Raises ConfigError for a URL that is not SQLite or PostgreSQL, StoreError when the
        database cannot be reached or migrated.
        """
        engine = make_engine(url)
        if migrate:
            try:
                _migrate.upgrade(engine)
            except SQLAlchemyError as exc:
                engine.dispose()
                raise StoreError(
                    f"could not migrate the database: {describe_failure(url, exc)}"
                ) from exc
        return cls(engine)
