"""Customers: their settings, keys, networks and callback, as ``CustomerOps``.

Operator changes follow the contract in :mod:`cloudsms.storage.config_ops`. A customer's money
(balance, ledger, price list contents) is ``price_ops``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of, customer_match
from cloudsms.storage.price_ops import price_list_for


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerInfo:
    """A customer as operators see it: settings, money, networks and granted routes."""

    id: int
    name: str
    auth_key: str
    enabled: bool
    currency: str
    balance_micros: int
    credit_limit_micros: int
    price_list_id: int | None
    price_list: str | None
    callback_url: str | None
    default_sender: str | None
    client_cert_sha256: str | None
    max_backlog: int | None
    report_intermediate: bool
    created_ms: int
    updated_ms: int
    #: PEM CA bundle for the customer's HTTPS callback (None: the system trust store).
    callback_ca_pem: str | None = None
    #: Where inbound messages are pushed (SMS_PUSH_MO); None: to ``callback_url``.
    mo_url: str | None = None
    networks: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()


class CustomerOps(StoreBase):
    """Named operations on customers; see :mod:`cloudsms.storage.config_ops` for the contract."""

    # -- customers --------------------------------------------------------------------------

    def create_customer(
        self,
        name: str,
        *,
        auth_key: str,
        currency: str,
        price_list: str | None = None,
        callback_url: str | None = None,
        credit_limit_micros: int = 0,
        balance_micros: int = 0,
        default_sender: str | None = None,
        actor: str = "operator",
    ) -> CustomerInfo:
        """Create a customer; an opening balance is written to the ledger like any top-up."""
        now = self.now_ms()
        with self._config_change(f"customer {name!r} or its auth key already exists") as conn:
            if conn.scalar(select(t.customers.c.id).where(t.customers.c.name == name)):
                raise Conflict(f"customer {name!r} already exists")
            list_id = None
            if price_list is not None:
                list_id = price_list_for(conn, price_list, currency)
            customer_id = conn.execute(
                insert(t.customers)
                .values(
                    name=name,
                    auth_key=auth_key,
                    enabled=True,
                    currency=currency,
                    balance_micros=balance_micros,
                    credit_limit_micros=credit_limit_micros,
                    price_list_id=list_id,
                    callback_url=callback_url,
                    default_sender=default_sender,
                    report_intermediate=False,
                    created_ms=now,
                    updated_ms=now,
                )
                .returning(t.customers.c.id)
            ).scalar_one()
            if balance_micros:
                conn.execute(
                    insert(t.balance_ledger).values(
                        customer_id=customer_id,
                        delta_micros=balance_micros,
                        balance_after_micros=balance_micros,
                        actor=actor,
                        note="opening balance",
                        created_ms=now,
                    )
                )
            return _customer_infos(conn, t.customers.c.id == customer_id)[0]

    def get_customer(self, ref: CustomerRef) -> CustomerInfo:
        with self._config_read() as conn:
            found = _customer_infos(conn, customer_match(ref))
        if not found:
            raise NotFound(f"no customer {ref!r}")
        return found[0]

    def list_customers(self) -> list[CustomerInfo]:
        with self._config_read() as conn:
            return _customer_infos(conn, None)

    def set_customer_enabled(self, ref: CustomerRef, enabled: bool) -> None:
        self._set_customer(ref, enabled=enabled)

    def set_callback_url(self, ref: CustomerRef, url: str | None) -> None:
        """Set (or remove, None) where reports are pushed.

        A new URL makes the customer's pending reports due at once, in the same transaction:
        those held for want of a URL (``report_ops.HELD``) and those waiting out a back-off
        against the old one. Reports claimed by a pusher right now are left to it.
        """
        with self._config_change() as conn:
            now = self.now_ms()
            customer_id = customer_id_of(conn, ref)
            _update_customer(conn, customer_id, updated_ms=now, callback_url=url)
            if url is not None:
                o = t.report_outbox.c
                conn.execute(
                    update(t.report_outbox)
                    .where(
                        o.customer_id == customer_id,
                        o.done_ms.is_(None),
                        o.claimed_by.is_(None),
                        o.next_attempt_ms > now,
                    )
                    .values(next_attempt_ms=now)
                )

    def set_default_sender(self, ref: CustomerRef, sender: str | None) -> None:
        self._set_customer(ref, default_sender=sender)

    def set_callback_ca(self, ref: CustomerRef, pem: str | None) -> None:
        self._set_customer(ref, callback_ca_pem=pem)

    def set_client_cert_sha256(self, ref: CustomerRef, fingerprint: str | None) -> None:
        self._set_customer(ref, client_cert_sha256=fingerprint)

    def set_credit_limit(self, ref: CustomerRef, micros: int) -> None:
        self._set_customer(ref, credit_limit_micros=micros)

    def set_max_backlog(self, ref: CustomerRef, limit: int | None) -> None:
        self._set_customer(ref, max_backlog=limit)

    def set_report_intermediate(self, ref: CustomerRef, enabled: bool) -> None:
        self._set_customer(ref, report_intermediate=enabled)

    def set_auth_key(self, ref: CustomerRef, auth_key: str) -> None:
        """Replace the key (rotation): the old key stops working at the next reload."""
        self._set_customer(ref, auth_key=auth_key)

    def set_customer_price_list(self, ref: CustomerRef, price_list: str | None) -> None:
        """Assign a price list (None: none); its currency must be the customer's."""
        with self._config_change() as conn:
            customer_id = customer_id_of(conn, ref)
            list_id = None
            if price_list is not None:
                currency = conn.scalar(
                    select(t.customers.c.currency).where(t.customers.c.id == customer_id)
                )
                list_id = price_list_for(conn, price_list, str(currency))
            _update_customer(conn, customer_id, price_list_id=list_id, updated_ms=self.now_ms())

    def _set_customer(self, ref: CustomerRef, **values: Any) -> None:
        with self._config_change("that auth key is already in use") as conn:
            _update_customer(conn, customer_id_of(conn, ref), updated_ms=self.now_ms(), **values)

    # -- networks ---------------------------------------------------------------------------

    def add_network(self, ref: CustomerRef, cidr: str) -> None:
        with self._config_change(f"{cidr} is already whitelisted for {ref!r}") as conn:
            conn.execute(
                insert(t.customer_networks).values(customer_id=customer_id_of(conn, ref), cidr=cidr)
            )

    def remove_network(self, ref: CustomerRef, cidr: str) -> None:
        with self._config_change() as conn:
            c = t.customer_networks.c
            deleted = conn.execute(
                delete(t.customer_networks).where(
                    c.customer_id == customer_id_of(conn, ref), c.cidr == cidr
                )
            )
            if deleted.rowcount == 0:
                raise NotFound(f"{cidr} is not whitelisted for customer {ref!r}")


def _update_customer(conn: Connection, customer_id: int, **values: Any) -> None:
    conn.execute(update(t.customers).where(t.customers.c.id == customer_id).values(**values))


def _customer_infos(conn: Connection, where: Any) -> list[CustomerInfo]:
    c = t.customers.c
    query = select(t.customers, t.price_lists.c.name.label("price_list")).outerjoin(
        t.price_lists, c.price_list_id == t.price_lists.c.id
    )
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query.order_by(c.name)).mappings().all()
    ids = [row["id"] for row in rows]
    if not ids:
        return []
    networks: dict[int, list[str]] = defaultdict(list)
    n = t.customer_networks.c
    for customer_id, cidr in conn.execute(
        select(n.customer_id, n.cidr).where(n.customer_id.in_(ids)).order_by(n.cidr)
    ):
        networks[customer_id].append(cidr)
    routes: dict[int, list[str]] = defaultdict(list)
    g = t.route_grants.c
    for customer_id, route in conn.execute(
        select(g.customer_id, t.routes.c.name)
        .join(t.routes, g.route_id == t.routes.c.id)
        .where(g.customer_id.in_(ids))
        .order_by(t.routes.c.name)
    ):
        routes[customer_id].append(route)
    return [
        CustomerInfo(
            **row,
            networks=tuple(networks[row["id"]]),
            routes=tuple(routes[row["id"]]),
        )
        for row in rows
    ]
