"""Operator configuration: named operations on customers, money, prices, routes and rules.

Strategy: every change runs in ONE transaction whose first statement bumps
``config_version.version`` (row id 1). That does three jobs at once:

* running servers poll the version and reload their ``ConfigSnapshot`` within a second;
* the bump takes the write lock first (SQLite) or locks the version row (PostgreSQL), so operator
  changes are serialised against each other and a "check, then insert" inside one is race-free;
* a failed change rolls the bump back with everything else, so a reload is never triggered for
  nothing.

Input is assumed valid (``cloudsms.services`` validates operator input); this layer maps
duplicates to ``Conflict`` and missing rows to ``NotFound`` with messages an operator can read.
Customers are named by id (``int``) or name (``str``), price lists and routes by name.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Table, and_, delete, insert, select, update

from cloudsms.domain.models import (
    ApprovalStatus,
    ConfigSnapshot,
    CountryPolicy,
    Customer,
    Network,
    Route,
    Template,
)
from cloudsms.exceptions import Conflict, NotFound, StoreError
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase

CustomerRef = int | str
RegistrationKind = Literal["signature", "template", "sender"]

#: kind → (table, column holding the registered text)
_REGISTRATIONS: dict[str, tuple[Table, str]] = {
    "signature": (t.signatures, "text"),
    "template": (t.templates, "body"),
    "sender": (t.sender_ids, "sender"),
}


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
    #: Last SERIAL used for report pushes (advanced by the report pusher, not by operators).
    report_serial: int = 0
    networks: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    id: int
    customer_id: int
    delta_micros: int
    balance_after_micros: int
    actor: str
    note: str | None
    created_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceList:
    id: int
    name: str
    currency: str
    #: prefix digits → price per segment in micro-units
    prices: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteInfo:
    id: int
    name: str
    description: str | None
    latin1: bool
    #: names of the customers the route is granted to
    customers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BlacklistEntry:
    id: int
    number: str
    #: None: platform-wide
    customer_id: int | None
    customer: str | None
    note: str | None
    created_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A signature, template or sender ID and where it is in its approval life cycle."""

    id: int
    kind: RegistrationKind
    customer_id: int
    customer: str
    text: str
    country_code: int | None
    status: ApprovalStatus
    note: str | None
    created_ms: int
    decided_ms: int | None


class ConfigOps(StoreBase):
    """Named operations on operator configuration; see the module docstring for the contract."""

    # -- plumbing ---------------------------------------------------------------------------

    def config_version(self) -> int:
        """The number running servers compare to decide whether to reload."""
        with self._config_read() as conn:
            version = conn.scalar(
                select(t.config_version.c.version).where(t.config_version.c.id == 1)
            )
        if version is None:
            raise StoreError("config_version row missing: run `cloudsms db upgrade`")
        return int(version)

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
                list_id = _price_list_for(conn, price_list, currency)
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
            found = _customer_infos(conn, _customer_match(ref))
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
            customer_id = _customer_id(conn, ref)
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
            customer_id = _customer_id(conn, ref)
            list_id = None
            if price_list is not None:
                currency = conn.scalar(
                    select(t.customers.c.currency).where(t.customers.c.id == customer_id)
                )
                list_id = _price_list_for(conn, price_list, str(currency))
            _update_customer(conn, customer_id, price_list_id=list_id, updated_ms=self.now_ms())

    def _set_customer(self, ref: CustomerRef, **values: Any) -> None:
        with self._config_change("that auth key is already in use") as conn:
            _update_customer(conn, _customer_id(conn, ref), updated_ms=self.now_ms(), **values)

    # -- networks ---------------------------------------------------------------------------

    def add_network(self, ref: CustomerRef, cidr: str) -> None:
        with self._config_change(f"{cidr} is already whitelisted for {ref!r}") as conn:
            conn.execute(
                insert(t.customer_networks).values(customer_id=_customer_id(conn, ref), cidr=cidr)
            )

    def remove_network(self, ref: CustomerRef, cidr: str) -> None:
        with self._config_change() as conn:
            c = t.customer_networks.c
            deleted = conn.execute(
                delete(t.customer_networks).where(
                    c.customer_id == _customer_id(conn, ref), c.cidr == cidr
                )
            )
            if deleted.rowcount == 0:
                raise NotFound(f"{cidr} is not whitelisted for customer {ref!r}")

    # -- money ------------------------------------------------------------------------------

    def change_balance(
        self, ref: CustomerRef, delta_micros: int, *, actor: str, note: str | None = None
    ) -> int:
        """Add ``delta_micros`` (negative to deduct) and write the ledger row; new balance."""
        now = self.now_ms()
        with self._config_change() as conn:
            customer_id = _customer_id(conn, ref)
            c = t.customers.c
            balance = conn.execute(
                update(t.customers)
                .where(c.id == customer_id)
                .values(balance_micros=c.balance_micros + delta_micros, updated_ms=now)
                .returning(c.balance_micros)
            ).scalar_one()
            conn.execute(
                insert(t.balance_ledger).values(
                    customer_id=customer_id,
                    delta_micros=delta_micros,
                    balance_after_micros=balance,
                    actor=actor,
                    note=note,
                    created_ms=now,
                )
            )
            return int(balance)

    def ledger(self, ref: CustomerRef, limit: int = 100) -> list[LedgerEntry]:
        """The newest ``limit`` balance changes of a customer, newest first."""
        with self._config_read() as conn:
            customer_id = _customer_id(conn, ref)
            rows = conn.execute(
                select(t.balance_ledger)
                .where(t.balance_ledger.c.customer_id == customer_id)
                .order_by(t.balance_ledger.c.id.desc())
                .limit(limit)
            ).mappings()
            return [LedgerEntry(**row) for row in rows]

    # -- price lists ------------------------------------------------------------------------

    def create_price_list(self, name: str, currency: str) -> PriceList:
        with self._config_change(f"price list {name!r} already exists") as conn:
            list_id = conn.execute(
                insert(t.price_lists)
                .values(name=name, currency=currency)
                .returning(t.price_lists.c.id)
            ).scalar_one()
        return PriceList(id=list_id, name=name, currency=currency, prices={})

    def set_price(self, price_list: str, prefix: str, micros: int) -> None:
        """Set (insert or replace) the per-segment price of a destination prefix."""
        with self._config_change() as conn:
            list_id, _ = _price_list_row(conn, price_list)
            c = t.prices.c
            where = and_(c.price_list_id == list_id, c.prefix == prefix)
            if not conn.execute(update(t.prices).where(where).values(price_micros=micros)).rowcount:
                conn.execute(
                    insert(t.prices).values(
                        price_list_id=list_id, prefix=prefix, price_micros=micros
                    )
                )

    def remove_price(self, price_list: str, prefix: str) -> None:
        with self._config_change() as conn:
            list_id, _ = _price_list_row(conn, price_list)
            c = t.prices.c
            gone = conn.execute(
                delete(t.prices).where(c.price_list_id == list_id, c.prefix == prefix)
            )
            if gone.rowcount == 0:
                raise NotFound(f"price list {price_list!r} has no price for prefix {prefix}")

    def get_price_list(self, name: str) -> PriceList:
        with self._config_read() as conn:
            list_id, currency = _price_list_row(conn, name)
            return PriceList(
                id=list_id, name=name, currency=currency, prices=_prices(conn).get(list_id, {})
            )

    def list_price_lists(self) -> list[PriceList]:
        with self._config_read() as conn:
            prices = _prices(conn)
            rows = conn.execute(select(t.price_lists).order_by(t.price_lists.c.name))
            return [
                PriceList(id=r.id, name=r.name, currency=r.currency, prices=prices.get(r.id, {}))
                for r in rows
            ]

    # -- routes -----------------------------------------------------------------------------

    def create_route(
        self, name: str, *, latin1: bool = False, description: str | None = None
    ) -> RouteInfo:
        with self._config_change(f"route {name!r} already exists") as conn:
            route_id = conn.execute(
                insert(t.routes)
                .values(name=name, latin1=latin1, description=description)
                .returning(t.routes.c.id)
            ).scalar_one()
        return RouteInfo(id=route_id, name=name, description=description, latin1=latin1)

    def list_routes(self) -> list[RouteInfo]:
        with self._config_read() as conn:
            granted: dict[int, list[str]] = defaultdict(list)
            grants = select(t.route_grants.c.route_id, t.customers.c.name).join(t.customers)
            for route_id, customer in conn.execute(grants.order_by(t.customers.c.name)):
                granted[route_id].append(customer)
            return [
                RouteInfo(
                    id=r.id,
                    name=r.name,
                    description=r.description,
                    latin1=r.latin1,
                    customers=tuple(granted[r.id]),
                )
                for r in conn.execute(select(t.routes).order_by(t.routes.c.name))
            ]

    def grant_route(self, route: str, ref: CustomerRef) -> None:
        with self._config_change(f"route {route!r} is already granted to {ref!r}") as conn:
            conn.execute(
                insert(t.route_grants).values(
                    customer_id=_customer_id(conn, ref), route_id=_route_id(conn, route)
                )
            )

    def revoke_route(self, route: str, ref: CustomerRef) -> None:
        with self._config_change() as conn:
            c = t.route_grants.c
            gone = conn.execute(
                delete(t.route_grants).where(
                    c.customer_id == _customer_id(conn, ref), c.route_id == _route_id(conn, route)
                )
            )
            if gone.rowcount == 0:
                raise NotFound(f"route {route!r} is not granted to customer {ref!r}")

    # -- blacklist --------------------------------------------------------------------------

    def add_blacklist(
        self, number: str, customer: CustomerRef | None = None, note: str | None = None
    ) -> None:
        """Blacklist a number for one customer, or platform-wide when ``customer`` is None."""
        scope = "platform-wide" if customer is None else f"for customer {customer!r}"
        with self._config_change(f"{number} is already blacklisted {scope}") as conn:
            customer_id = None if customer is None else _customer_id(conn, customer)
            # NULL customer_id escapes the unique constraint: check (serialised, see above).
            if conn.scalar(select(t.blacklist.c.id).where(*_blacklist_match(number, customer_id))):
                raise Conflict(f"{number} is already blacklisted {scope}")
            conn.execute(
                insert(t.blacklist).values(
                    customer_id=customer_id, number=number, note=note, created_ms=self.now_ms()
                )
            )

    def remove_blacklist(self, number: str, customer: CustomerRef | None = None) -> None:
        with self._config_change() as conn:
            customer_id = None if customer is None else _customer_id(conn, customer)
            gone = conn.execute(delete(t.blacklist).where(*_blacklist_match(number, customer_id)))
            if gone.rowcount == 0:
                scope = "platform-wide" if customer is None else f"for customer {customer!r}"
                raise NotFound(f"{number} is not blacklisted {scope}")

    def list_blacklist(self, customer: CustomerRef | None = None) -> list[BlacklistEntry]:
        """Every entry, or only those of one customer (its own list, not the platform's)."""
        with self._config_read() as conn:
            b = t.blacklist.c
            query = select(t.blacklist, t.customers.c.name).outerjoin(t.customers)
            if customer is not None:
                query = query.where(b.customer_id == _customer_id(conn, customer))
            return [
                BlacklistEntry(
                    id=r.id,
                    number=r.number,
                    customer_id=r.customer_id,
                    customer=r.name,
                    note=r.note,
                    created_ms=r.created_ms,
                )
                for r in conn.execute(query.order_by(b.number, b.id))
            ]

    # -- country policies -------------------------------------------------------------------

    def list_policies(self) -> list[CountryPolicy]:
        with self._config_read() as conn:
            return list(_policies(conn).values())

    def get_policy(self, country_code: int) -> CountryPolicy | None:
        with self._config_read() as conn:
            return _policies(conn, country_code).get(country_code)

    def upsert_policy(self, policy: CountryPolicy) -> None:
        values = {
            "region": policy.region,
            "requires_template": policy.requires_template,
            "requires_signature": policy.requires_signature,
            "requires_registered_sender": policy.requires_registered_sender,
            "sender_format": policy.sender_format,
            "note": policy.note,
        }
        with self._config_change() as conn:
            c = t.country_policies.c
            where = c.country_code == policy.country_code
            if not conn.execute(update(t.country_policies).where(where).values(values)).rowcount:
                conn.execute(
                    insert(t.country_policies).values(country_code=policy.country_code, **values)
                )

    def delete_policy(self, country_code: int) -> None:
        with self._config_change() as conn:
            c = t.country_policies.c
            gone = conn.execute(delete(t.country_policies).where(c.country_code == country_code))
            if gone.rowcount == 0:
                raise NotFound(f"no country policy for +{country_code}")

    # -- signatures, templates, sender IDs --------------------------------------------------

    def add_signature(self, ref: CustomerRef, text: str) -> Registration:
        return self._register("signature", ref, text, None)

    def add_template(
        self, ref: CustomerRef, body: str, country_code: int | None = None
    ) -> Registration:
        return self._register("template", ref, body, country_code)

    def add_sender(
        self, ref: CustomerRef, sender: str, country_code: int | None = None
    ) -> Registration:
        return self._register("sender", ref, sender, country_code)

    def approve_signature(self, id: int, note: str | None = None) -> Registration:
        return self._decide("signature", id, "approved", note)

    def reject_signature(self, id: int, note: str | None = None) -> Registration:
        return self._decide("signature", id, "rejected", note)

    def approve_template(self, id: int, note: str | None = None) -> Registration:
        return self._decide("template", id, "approved", note)

    def reject_template(self, id: int, note: str | None = None) -> Registration:
        return self._decide("template", id, "rejected", note)

    def approve_sender(self, id: int, note: str | None = None) -> Registration:
        return self._decide("sender", id, "approved", note)

    def reject_sender(self, id: int, note: str | None = None) -> Registration:
        return self._decide("sender", id, "rejected", note)

    def list_registrations(
        self,
        kind: RegistrationKind,
        customer: CustomerRef | None = None,
        status: ApprovalStatus | None = None,
    ) -> list[Registration]:
        """Signatures, templates or sender IDs, optionally of one customer and/or one status."""
        table, _ = _REGISTRATIONS[kind]
        with self._config_read() as conn:
            conditions = []
            if customer is not None:
                conditions.append(table.c.customer_id == _customer_id(conn, customer))
            if status is not None:
                conditions.append(table.c.status == status)
            return _registrations(conn, kind, *conditions)

    def _register(
        self, kind: RegistrationKind, ref: CustomerRef, text: str, country_code: int | None
    ) -> Registration:
        table, column = _REGISTRATIONS[kind]
        duplicate = f"customer {ref!r} already has this {kind}"
        now = self.now_ms()
        with self._config_change(duplicate) as conn:
            customer_id = _customer_id(conn, ref)
            match = [table.c.customer_id == customer_id, table.c[column] == text]
            if kind != "signature":
                match.append(_is(table.c.country_code, country_code))
            if conn.scalar(select(table.c.id).where(*match)):
                raise Conflict(duplicate)
            values: dict[str, Any] = {"customer_id": customer_id, column: text}
            if kind != "signature":
                values["country_code"] = country_code
            new_id = conn.execute(
                insert(table)
                .values(status="pending", created_ms=now, **values)
                .returning(table.c.id)
            ).scalar_one()
            return _registrations(conn, kind, table.c.id == new_id)[0]

    def _decide(
        self, kind: RegistrationKind, id: int, status: ApprovalStatus, note: str | None
    ) -> Registration:
        table, _ = _REGISTRATIONS[kind]
        with self._config_change() as conn:
            current = conn.scalar(select(table.c.status).where(table.c.id == id))
            if current is None:
                raise NotFound(f"no {kind} with id {id}")
            if current == status:
                raise Conflict(f"{kind} {id} is already {status}")
            conn.execute(
                update(table)
                .where(table.c.id == id)
                .values(status=status, note=note, decided_ms=self.now_ms())
            )
            return _registrations(conn, kind, table.c.id == id)[0]

    # -- the snapshot the accept path reads -------------------------------------------------

    def load_snapshot(self) -> ConfigSnapshot:
        """Everything the accept path needs, in one read.

        The version is read FIRST: a change committed while the rest is read bumps the version
        past it, so the next poll reloads again and no change is ever missed.
        """
        with self._config_read() as conn:
            version = conn.scalar(
                select(t.config_version.c.version).where(t.config_version.c.id == 1)
            )
            networks: dict[int, list[Network]] = defaultdict(list)
            for customer_id, cidr in conn.execute(
                select(t.customer_networks.c.customer_id, t.customer_networks.c.cidr)
            ):
                networks[customer_id].append(ipaddress.ip_network(cidr, strict=False))
            c = t.customers.c
            customers = {
                r.auth_key: Customer(
                    id=r.id,
                    name=r.name,
                    auth_key=r.auth_key,
                    enabled=True,
                    currency=r.currency,
                    credit_limit_micros=r.credit_limit_micros,
                    price_list_id=r.price_list_id,
                    callback_url=r.callback_url,
                    default_sender=r.default_sender,
                    client_cert_sha256=r.client_cert_sha256,
                    max_backlog=r.max_backlog,
                    report_intermediate=r.report_intermediate,
                    networks=tuple(networks.get(r.id, ())),
                )
                for r in conn.execute(select(t.customers).where(c.enabled.is_(True)))
            }
            routes = {
                r.name: Route(id=r.id, name=r.name, latin1=r.latin1, enabled=r.enabled)
                for r in conn.execute(select(t.routes))
            }
            grants = frozenset(
                (int(cid), int(rid))
                for cid, rid in conn.execute(
                    select(t.route_grants.c.customer_id, t.route_grants.c.route_id)
                )
            )
            black_global: set[str] = set()
            black_customer: dict[int, set[str]] = defaultdict(set)
            for customer_id, number in conn.execute(
                select(t.blacklist.c.customer_id, t.blacklist.c.number)
            ):
                (black_global if customer_id is None else black_customer[customer_id]).add(number)
            signatures: dict[int, set[str]] = defaultdict(set)
            s = t.signatures.c
            for customer_id, text in conn.execute(
                select(s.customer_id, s.text).where(s.status == "approved")
            ):
                signatures[customer_id].add(text)
            templates: dict[int, list[Template]] = defaultdict(list)
            tc = t.templates.c
            for r in conn.execute(
                select(t.templates).where(tc.status == "approved").order_by(tc.id)
            ):
                templates[r.customer_id].append(
                    Template(
                        id=r.id,
                        customer_id=r.customer_id,
                        body=r.body,
                        country_code=r.country_code,
                        status="approved",
                    )
                )
            senders: dict[int, set[tuple[str, int | None]]] = defaultdict(set)
            sc = t.sender_ids.c
            for customer_id, sender, cc in conn.execute(
                select(sc.customer_id, sc.sender, sc.country_code).where(sc.status == "approved")
            ):
                senders[customer_id].add((sender, cc))
            return ConfigSnapshot(
                version=int(version or 0),
                customers_by_key=customers,
                prices=_prices(conn),
                routes_by_name=routes,
                grants=grants,
                blacklist_global=frozenset(black_global),
                blacklist_by_customer={k: frozenset(v) for k, v in black_customer.items()},
                policies=_policies(conn),
                signatures={k: frozenset(v) for k, v in signatures.items()},
                templates={k: tuple(v) for k, v in templates.items()},
                senders={k: frozenset(v) for k, v in senders.items()},
            )


# -- row helpers (module level: they take the connection of the caller's transaction) --------


def _is(column: Any, value: Any) -> Any:
    """``column = value`` that also matches NULL (SQL ``=`` never does)."""
    return column.is_(None) if value is None else column == value


def _customer_match(ref: CustomerRef) -> Any:
    return t.customers.c.id == ref if isinstance(ref, int) else t.customers.c.name == ref


def _customer_id(conn: Connection, ref: CustomerRef) -> int:
    found = conn.scalar(select(t.customers.c.id).where(_customer_match(ref)))
    if found is None:
        raise NotFound(f"no customer {ref!r}")
    return int(found)


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


def _price_list_row(conn: Connection, name: str) -> tuple[int, str]:
    row = conn.execute(
        select(t.price_lists.c.id, t.price_lists.c.currency).where(t.price_lists.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"no price list {name!r}")
    return int(row.id), str(row.currency)


def _price_list_for(conn: Connection, name: str, currency: str) -> int:
    """The id of price list ``name``, which must be priced in ``currency``."""
    list_id, list_currency = _price_list_row(conn, name)
    if list_currency != currency:
        raise Conflict(
            f"price list {name!r} is in {list_currency} but the customer is billed in {currency}"
        )
    return list_id


def _prices(conn: Connection) -> dict[int, dict[str, int]]:
    prices: dict[int, dict[str, int]] = defaultdict(dict)
    p = t.prices.c
    for list_id, prefix, micros in conn.execute(
        select(p.price_list_id, p.prefix, p.price_micros).order_by(p.prefix)
    ):
        prices[list_id][prefix] = int(micros)
    return dict(prices)


def _route_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(t.routes.c.id).where(t.routes.c.name == name))
    if found is None:
        raise NotFound(f"no route {name!r}")
    return int(found)


def _blacklist_match(number: str, customer_id: int | None) -> list[Any]:
    return [t.blacklist.c.number == number, _is(t.blacklist.c.customer_id, customer_id)]


def _policies(conn: Connection, country_code: int | None = None) -> dict[int, CountryPolicy]:
    c = t.country_policies.c
    query = select(t.country_policies).order_by(c.country_code)
    if country_code is not None:
        query = query.where(c.country_code == country_code)
    return {row["country_code"]: CountryPolicy(**row) for row in conn.execute(query).mappings()}


def _registrations(conn: Connection, kind: RegistrationKind, *where: Any) -> list[Registration]:
    table, column = _REGISTRATIONS[kind]
    query = (
        select(table, t.customers.c.name.label("customer_name"))
        .join(t.customers, table.c.customer_id == t.customers.c.id)
        .where(*where)
        .order_by(table.c.id)
    )
    return [
        Registration(
            id=r["id"],
            kind=kind,
            customer_id=r["customer_id"],
            customer=r["customer_name"],
            text=r[column],
            country_code=r.get("country_code"),
            status=r["status"],
            note=r["note"],
            created_ms=r["created_ms"],
            decided_ms=r["decided_ms"],
        )
        for r in conn.execute(query).mappings()
    ]
