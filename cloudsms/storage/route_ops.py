"""Routes and their grants to customers: ``RouteOps``.

Operator changes follow the contract in :mod:`cloudsms.storage.config_ops`. The rules that
send a route's traffic to connectors are ``carrier_ops``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from cloudsms.exceptions import NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteInfo:
    id: int
    name: str
    description: str | None
    latin1: bool
    #: names of the customers the route is granted to
    customers: tuple[str, ...] = ()


class RouteOps(StoreBase):
    """Named operations on routes and grants."""

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
                    customer_id=customer_id_of(conn, ref), route_id=_route_id(conn, route)
                )
            )

    def revoke_route(self, route: str, ref: CustomerRef) -> None:
        with self._config_change() as conn:
            c = t.route_grants.c
            gone = conn.execute(
                delete(t.route_grants).where(
                    c.customer_id == customer_id_of(conn, ref), c.route_id == _route_id(conn, route)
                )
            )
            if gone.rowcount == 0:
                raise NotFound(f"route {route!r} is not granted to customer {ref!r}")


def _route_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(t.routes.c.id).where(t.routes.c.name == name))
    if found is None:
        raise NotFound(f"no route {name!r}")
    return int(found)
