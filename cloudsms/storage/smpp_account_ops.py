"""Customers' SMPP accounts: ``SmppAccountOps``.

Operator changes follow the contract in :mod:`cloudsms.storage.config_ops` (they bump
``config_version``, so a running SMPP server reloads its accounts within a second).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cloudsms.domain.smpp_accounts import RECEIVING_BINDS, SmppAccount
from cloudsms.exceptions import NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of


class SmppAccountOps(StoreBase):
    """Named operations on SMPP accounts."""

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
        intermediate_receipts: bool = False,
        mo: bool | None = None,
    ) -> SmppAccount:
        """``mo`` None: the account takes MOs when it may bind rx or trx (it can receive)."""
        with self._config_change(f"SMPP system_id {system_id!r} is taken") as conn:
            customer_id = customer_id_of(conn, ref)
            conn.execute(
                insert(t.smpp_accounts).values(
                    customer_id=customer_id,
                    system_id=system_id,
                    password_hash=password_hash,
                    binds=",".join(sorted(binds)),
                    max_sessions=max_sessions,
                    throughput=throughput,
                    route=route,
                    intermediate_receipts=intermediate_receipts,
                    enabled=True,
                    mo=bool(binds & RECEIVING_BINDS) if mo is None else mo,
                    created_ms=self.now_ms(),
                )
            )
        return self.get_smpp_account(system_id)

    def get_smpp_account(self, system_id: str) -> SmppAccount:
        found = self._smpp_accounts(t.smpp_accounts.c.system_id == system_id)
        if not found:
            raise NotFound(f"no SMPP account {system_id!r}")
        return found[0]

    def list_smpp_accounts(self, customer: CustomerRef | None = None) -> list[SmppAccount]:
        """Every account (what the SMPP server loads), or those of one customer."""
        if customer is None:
            return self._smpp_accounts()
        with self._config_read() as conn:
            customer_id = customer_id_of(conn, customer)
        return self._smpp_accounts(t.smpp_accounts.c.customer_id == customer_id)

    def set_smpp_password(self, system_id: str, password_hash: str) -> None:
        self._update_smpp_account(system_id, password_hash=password_hash)

    def set_smpp_account_enabled(self, system_id: str, enabled: bool) -> None:
        """A disabled account's binds are refused; its customer's pending SMPP MOs go to HTTP
        if no other account of it takes MOs (``_mo_back_to_http``)."""
        self._update_smpp_account(system_id, enabled=enabled)

    def set_smpp_account_mo(self, system_id: str, mo: bool) -> None:
        """Whether MOs routed to the account's customer go out on its sessions: those stored
        from now on. Off, and no other enabled account of the customer taking MOs, its MOs
        pending for SMPP go to HTTP (``_mo_back_to_http``); on, those pending for HTTP stay."""
        self._update_smpp_account(system_id, mo=mo)

    def remove_smpp_account(self, system_id: str) -> None:
        a = t.smpp_accounts.c
        with self._config_change() as conn:
            customer_id = conn.scalar(select(a.customer_id).where(a.system_id == system_id))
            if customer_id is None:
                raise NotFound(f"no SMPP account {system_id!r}")
            conn.execute(delete(t.smpp_accounts).where(a.system_id == system_id))
            _mo_back_to_http(conn, customer_id)

    def _update_smpp_account(self, system_id: str, **values: Any) -> None:
        a = t.smpp_accounts.c
        with self._config_change() as conn:
            customer_id = conn.scalar(select(a.customer_id).where(a.system_id == system_id))
            if customer_id is None:
                raise NotFound(f"no SMPP account {system_id!r}")
            conn.execute(update(t.smpp_accounts).where(a.system_id == system_id).values(**values))
            _mo_back_to_http(conn, customer_id)

    def _smpp_accounts(self, *where: Any) -> list[SmppAccount]:
        a = t.smpp_accounts.c
        query = (
            select(t.smpp_accounts, t.customers.c.name)
            .join(t.customers, t.customers.c.id == a.customer_id)
            .where(*where)
            .order_by(a.system_id)
        )
        with self._config_read() as conn:
            return [
                SmppAccount(
                    id=r.id,
                    customer_id=r.customer_id,
                    customer=r.name,
                    system_id=r.system_id,
                    password_hash=r.password_hash,
                    binds=frozenset(r.binds.split(",")),
                    max_sessions=r.max_sessions,
                    throughput=r.throughput,
                    route=r.route,
                    intermediate_receipts=r.intermediate_receipts,
                    enabled=r.enabled,
                    mo=r.mo,
                )
                for r in conn.execute(query)
            ]


def _mo_back_to_http(conn: Connection, customer_id: int) -> None:
    """A customer left with no enabled account taking MOs: its MOs pending for SMPP are pushed
    over HTTP instead (they would wait for a bind that cannot come). Their next attempt time is
    kept: one claimed by an SMPP server stays leased to it, and if that server delivers it, the
    row is done before the HTTP pusher may claim it."""
    a, m = t.smpp_accounts.c, t.inbound_messages.c
    takes = conn.scalar(
        select(a.id).where(a.customer_id == customer_id, a.enabled.is_(True), a.mo.is_(True))
    )
    if takes is None:
        conn.execute(
            update(t.inbound_messages)
            .where(m.customer_id == customer_id, m.channel == "smpp", m.push_state == "pending")
            .values(channel="http")
        )
