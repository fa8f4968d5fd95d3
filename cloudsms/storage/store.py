"""The store: every named database operation of cloudsms behind one object.

``Store`` combines the operation groups (mixins over ``base.StoreBase``): ``MessageOps`` for the
accept path and message queries, ``ConfigOps`` for operator configuration and the snapshot the API
reads, ``CarrierOps`` for connectors, route rules and connector status, ``DispatchOps`` (with
``ReportOps``) for the carrier side and the report outbox, ``QueryOps`` for read-side queries,
``AdminOps`` for admin tokens, the audit trail and the console's searches, ``LeaseOps`` for
worker liveness and connector ownership (several worker processes on one PostgreSQL).
Both engines (SQLite, PostgreSQL) sit behind the same names; an operation picks the fastest SQL
form for its engine.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from cloudsms.exceptions import StoreError
from cloudsms.storage import migrate as _migrate
from cloudsms.storage.admin_ops import AdminOps
from cloudsms.storage.carrier_ops import CarrierOps
from cloudsms.storage.config_ops import ConfigOps
from cloudsms.storage.dispatch_ops import DispatchOps
from cloudsms.storage.engine import describe_failure, make_engine
from cloudsms.storage.lease_ops import LeaseOps
from cloudsms.storage.messages import MessageOps
from cloudsms.storage.query_ops import QueryOps


class Store(MessageOps, ConfigOps, CarrierOps, DispatchOps, QueryOps, AdminOps, LeaseOps):
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
