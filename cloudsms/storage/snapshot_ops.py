"""The configuration snapshot the accept path reads, and its version: ``SnapshotOps``.

Running servers poll :meth:`SnapshotOps.config_version` and reload with
:meth:`SnapshotOps.load_snapshot` when it moved (every operator change bumps it first, see
:mod:`cloudsms.storage.config_ops`).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from sqlalchemy import select

from cloudsms.domain.models import ConfigSnapshot, Customer, Network, Route, Template
from cloudsms.exceptions import StoreError
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.price_ops import prices_by_list
from cloudsms.storage.registration_ops import policies_by_code


class SnapshotOps(StoreBase):
    """The read every running server makes of the operator configuration."""

    def config_version(self) -> int:
        """The number running servers compare to decide whether to reload."""
        with self._config_read() as conn:
            version = conn.scalar(
                select(t.config_version.c.version).where(t.config_version.c.id == 1)
            )
        if version is None:
            raise StoreError("config_version row missing: run `cloudsms db upgrade`")
        return int(version)

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
            # Loaded with the rest: the accept path answers Intercept from this set in memory.
            opted_out: dict[int, set[str]] = defaultdict(set)
            for customer_id, number in conn.execute(
                select(t.opt_outs.c.customer_id, t.opt_outs.c.number)
            ):
                opted_out[customer_id].add(number)
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
                prices=prices_by_list(conn),
                routes_by_name=routes,
                grants=grants,
                blacklist_global=frozenset(black_global),
                blacklist_by_customer={k: frozenset(v) for k, v in black_customer.items()},
                opt_outs_by_customer={k: frozenset(v) for k, v in opted_out.items()},
                policies=policies_by_code(conn),
                signatures={k: frozenset(v) for k, v in signatures.items()},
                templates={k: tuple(v) for k, v in templates.items()},
                senders={k: frozenset(v) for k, v in senders.items()},
            )
