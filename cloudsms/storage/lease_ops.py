"""Leases: which worker processes are alive, and which of them owns each carrier connector.

Strategy (the theory lives in ``cloudsms.workers.leases``; this is the SQL):

* A worker process registers a ``workers`` row and renews its ``lease_until_ms`` every second
  (lease about 5 s). A worker is *alive* while its lease is in the future. Its message claims
  (``messages.claimed_by``) live exactly as long: ``DispatchOps.recover_in_flight`` gives the
  QUEUED messages of dead workers back to the queue, and nobody else's.
* ``connector_leases`` has one row per connector: the owner (a worker id), until when, and
  whether the owner's link can take messages now. A connector whose lease ran out is free; a
  worker takes it with a conditional UPDATE (``owner IS NULL OR lease_until_ms < now``), so two
  processes can never both win it: on PostgreSQL the row lock serialises the two UPDATEs and the
  second one re-checks the condition after the first commits (READ COMMITTED re-evaluation); on
  SQLite the write lock does the same.
* Every time here is the **database's clock** (``clock_timestamp()`` / ``julianday('now')``),
  never the process's: hosts whose clocks disagree still agree on who is alive.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, or_, select, update
from sqlalchemy import literal_column as _sql
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import BigInteger

from cloudsms.storage import tables
from cloudsms.storage.base import StoreBase

_w = tables.workers.c
_l = tables.connector_leases.c

#: The database clock in epoch milliseconds, as SQL text per engine (leases are judged by it).
DB_NOW_SQL = _DB_NOW = {
    "postgresql": "(extract(epoch from clock_timestamp()) * 1000)::bigint",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
}


def db_now(dialect: str) -> ColumnElement[int]:
    """The database clock in epoch milliseconds, as a SQL expression (leases are judged by it)."""
    return _sql(_DB_NOW[dialect], BigInteger)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: int
    name: str
    host: str
    pid: int
    role: str
    started_ms: int
    lease_until_ms: int


@dataclass(frozen=True, slots=True)
class ConnectorLease:
    connector_id: int
    owner: int | None
    lease_until_ms: int
    available: bool


@dataclass(frozen=True, slots=True)
class LeaseView:
    """Who is alive and who owns what, read in one transaction at ``now_ms`` (database clock)."""

    now_ms: int
    #: Live workers (lease in the future).
    workers: tuple[WorkerInfo, ...]
    #: Connector leases still running (expired ones are absent: those connectors are free).
    leases: Mapping[int, ConnectorLease]


class LeaseOps(StoreBase):
    """Named operations on worker liveness and connector ownership."""

    def db_now_expr(self) -> ColumnElement[int]:
        return db_now(self.dialect)

    def db_now_ms(self) -> int:
        with self._connect(write=False) as conn:
            return int(conn.scalar(select(self.db_now_expr())) or 0)

    # -- workers ----------------------------------------------------------------------------

    def register_worker(self, *, name: str, host: str, pid: int, role: str, lease_ms: int) -> int:
        """A new worker row with a running lease; returns its id (the claimer of its messages)."""
        now = self.db_now_expr()
        with self._connect(write=True) as conn:
            started = int(conn.scalar(select(now)) or 0)
            result = conn.execute(
                tables.workers.insert().values(
                    name=name, host=host, pid=pid, role=role, started_ms=started,
                    lease_until_ms=started + lease_ms,
                )
            )  # fmt: skip
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def renew_leases(self, worker_id: int, lease_ms: int, available: Mapping[int, bool]) -> bool:
        """Extend the worker's lease and those of its connectors (with their availability).

        Returns False when the worker's lease had already run out while another worker was
        alive: it is considered dead, its claims may have been recovered and its connectors
        taken, so the caller must stop its links and register again; nothing is renewed then.
        A lease that ran out with no other live worker (a lone process slowed down, e.g. SQLite's
        write lock under heavy load) is simply renewed: nobody can have taken anything over.
        """
        now = self.db_now_expr()
        others = select(_w.id).where(_w.id != worker_id, _w.lease_until_ms > now).exists()
        with self._connect(write=True) as conn:
            renewed = conn.execute(
                update(tables.workers)
                .where(_w.id == worker_id, or_(_w.lease_until_ms >= now, ~others))
                .values(lease_until_ms=now + lease_ms)
            ).rowcount
            if not renewed:
                return False
            if available:
                conn.execute(
                    update(tables.connector_leases)
                    .where(_l.connector_id == bindparam("b_cid"), _l.owner == worker_id)
                    .values(lease_until_ms=now + lease_ms, available=bindparam("b_ok")),
                    [{"b_cid": cid, "b_ok": ok} for cid, ok in sorted(available.items())],
                )
            return True

    def retire_worker(self, worker_id: int) -> None:
        """A clean stop: release the worker's connectors and delete its row (lease gone now)."""
        with self._connect(write=True) as conn:
            _release(conn, worker_id, None)
            conn.execute(delete(tables.workers).where(_w.id == worker_id))

    def expire_workers(self, worker_ids: Collection[int]) -> int:
        """End the leases of workers known to be dead (e.g. their pid is gone on this host)."""
        if not worker_ids:
            return 0
        with self._connect(write=True) as conn:
            conn.execute(
                update(tables.connector_leases)
                .where(_l.owner.in_(list(worker_ids)))
                .values(owner=None, lease_until_ms=0, available=False)
            )
            return (
                conn.execute(
                    update(tables.workers)
                    .where(_w.id.in_(list(worker_ids)))
                    .values(lease_until_ms=0)
                ).rowcount
                or 0
            )

    def list_workers(self, *, live_only: bool = False) -> list[WorkerInfo]:
        query = select(tables.workers).order_by(_w.id)
        if live_only:
            query = query.where(_w.lease_until_ms > self.db_now_expr())
        with self._connect(write=False) as conn:
            return [_worker(dict(row._mapping)) for row in conn.execute(query)]

    def prune_workers(self, older_than_ms: int) -> int:
        """Delete rows of workers whose lease ended more than ``older_than_ms`` ago."""
        with self._connect(write=True) as conn:
            return (
                conn.execute(
                    delete(tables.workers).where(
                        _w.lease_until_ms < self.db_now_expr() - older_than_ms
                    )
                ).rowcount
                or 0
            )

    # -- connectors -------------------------------------------------------------------------

    def lease_view(self) -> LeaseView:
        now_expr = self.db_now_expr()
        with self._connect(write=False) as conn:
            now = int(conn.scalar(select(now_expr)) or 0)
            workers = tuple(
                _worker(dict(row._mapping))
                for row in conn.execute(
                    select(tables.workers).where(_w.lease_until_ms > now).order_by(_w.id)
                )
            )
            leases = {
                row.connector_id: ConnectorLease(
                    row.connector_id, row.owner, row.lease_until_ms, bool(row.available)
                )
                for row in conn.execute(
                    select(tables.connector_leases).where(
                        _l.owner.is_not(None), _l.lease_until_ms > now
                    )
                )
            }
        return LeaseView(now, workers, leases)

    def acquire_connectors(
        self, worker_id: int, connector_ids: Collection[int], lease_ms: int, *, limit: int
    ) -> list[int]:
        """Take up to ``limit`` of these connectors that are free (no owner, or lease run out).

        Returns the ids taken. Connectors with no lease row yet get one first.
        """
        if not connector_ids or limit <= 0:
            return []
        now = self.db_now_expr()
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        taken: list[int] = []
        with self._connect(write=True) as conn:
            existing = set(
                conn.scalars(
                    select(tables.connectors.c.id).where(
                        tables.connectors.c.id.in_(list(connector_ids))
                    )
                )
            )
            if not existing:
                return []
            conn.execute(
                dialect.insert(tables.connector_leases).on_conflict_do_nothing(),
                [
                    {"connector_id": cid, "owner": None, "lease_until_ms": 0, "available": False}
                    for cid in sorted(existing)
                ],
            )
            for cid in sorted(existing):
                if len(taken) >= limit:
                    break
                won = conn.execute(
                    update(tables.connector_leases)
                    .where(
                        _l.connector_id == cid,
                        or_(_l.owner.is_(None), _l.lease_until_ms < now, _l.owner == worker_id),
                    )
                    .values(owner=worker_id, lease_until_ms=now + lease_ms, available=False)
                ).rowcount
                if won:
                    taken.append(cid)
        return taken

    def release_connectors(self, worker_id: int, connector_ids: Collection[int]) -> None:
        """Give connectors up (their links are already stopped): another worker may take them."""
        if connector_ids:
            with self._connect(write=True) as conn:
                _release(conn, worker_id, connector_ids)


def _release(conn: Connection, worker_id: int, connector_ids: Collection[int] | None) -> None:
    where: Any = _l.owner == worker_id
    if connector_ids is not None:
        where = and_(where, _l.connector_id.in_(list(connector_ids)))
    conn.execute(
        update(tables.connector_leases)
        .where(where)
        .values(owner=None, lease_until_ms=0, available=False)
    )


def _worker(m: Mapping[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=m["id"], name=m["name"], host=m["host"], pid=m["pid"], role=m["role"],
        started_ms=m["started_ms"], lease_until_ms=m["lease_until_ms"],
    )  # fmt: skip


__all__ = ["ConnectorLease", "LeaseOps", "LeaseView", "WorkerInfo"]
