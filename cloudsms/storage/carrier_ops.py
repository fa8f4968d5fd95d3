"""Carrier configuration and live status: connectors, route rules, connector status.

Strategy: the same contract as ``config_ops`` — every configuration change runs in ONE
transaction whose first statement bumps ``config_version`` (so running processes reload their
routing table within a second, operator changes are serialised, and a failed change bumps
nothing); duplicates become ``Conflict``, missing names ``NotFound``. Input is assumed valid
(``cloudsms.services.carrier`` validates operator input).

Connector status is different: the process that owns the connectors upserts one row per
connector every second. Those writes do NOT bump the version (they are not configuration, and a
bump per second would make every server reload its snapshot every second). They use the
engine's native upsert (``INSERT … ON CONFLICT DO UPDATE`` on both SQLite and PostgreSQL) in one
transaction, executemany over the rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from cloudsms.domain.routing import (
    ConnectorConfig,
    ConnectorSettings,
    ConnectorStatus,
    RouteRule,
    RoutingTable,
)
from cloudsms.exceptions import Conflict, NotFound, StoreError
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase, first_line

#: Columns an operator may change with ``update_connector`` (``id`` and the times are ours).
CONNECTOR_FIELDS: frozenset[str] = frozenset(
    c.name for c in t.connectors.columns if c.name not in ("id", "created_ms", "updated_ms")
)
#: The ``ConnectorConfig`` fields, one column each.
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(ConnectorConfig))
_STATUS_FIELDS = (
    "state",
    "window_in_use",
    "window_size",
    "submit_rate",
    "submitted_total",
    "last_error",
    "owner",
    "lease_until_ms",
    "updated_ms",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRuleInfo:
    """A route rule as operators see it: names, not ids."""

    id: int
    route: str
    connector: str
    #: "" matches every destination.
    prefix: str
    priority: int
    weight: int
    #: Whether the connector is enabled (a rule of a disabled connector is skipped).
    connector_enabled: bool = True


class CarrierOps(StoreBase):
    """Named operations on carrier connectors, route rules and connector status."""

    # -- connectors -------------------------------------------------------------------------

    def create_connector(
        self, name: str, settings: ConnectorSettings | None = None, /, **fields: Any
    ) -> ConnectorConfig:
        """Create a connector from ``settings``, or from its fields given as keywords.

        Fields left out take the ``ConnectorSettings`` defaults; ``Conflict`` if the name is
        taken.

        >>> store.create_connector("hk-1", host="smsc.example.net", port=2775,
        ...                        system_id="acme", password="secret", window=100)
        """
        if settings is None:
            settings = ConnectorSettings(**fields)
        elif fields:
            raise TypeError("give the settings or their fields, not both")
        now = self.now_ms()
        values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
        values.update(
            name=name,
            data_codings=t.codings_text(settings.data_codings),
            created_ms=now,
            updated_ms=now,
        )
        with self._config_change(f"connector {name!r} already exists") as conn:
            if conn.scalar(select(t.connectors.c.id).where(t.connectors.c.name == name)):
                raise Conflict(f"connector {name!r} already exists")
            new_id = conn.execute(
                insert(t.connectors).values(values).returning(t.connectors.c.id)
            ).scalar_one()
            return _connector(conn, t.connectors.c.id == new_id, name)

    def update_connector(self, name: str, /, **fields: Any) -> ConnectorConfig:
        """Change the given columns (``CONNECTOR_FIELDS``; ``name=`` renames); the new config.

        >>> store.update_connector("hk-1", window=100, data_codings={0, 3, 8})
        """
        unknown = set(fields) - CONNECTOR_FIELDS
        if unknown:
            raise TypeError(f"not connector settings: {', '.join(sorted(unknown))}")
        if "data_codings" in fields:
            fields["data_codings"] = t.codings_text(fields["data_codings"])
        new_name = fields.get("name", name)
        with self._config_change(f"connector {new_name!r} already exists") as conn:
            connector_id = _connector_id(conn, name)
            if fields:
                conn.execute(
                    update(t.connectors)
                    .where(t.connectors.c.id == connector_id)
                    .values(updated_ms=self.now_ms(), **fields)
                )
            return _connector(conn, t.connectors.c.id == connector_id, new_name)

    def set_connector_enabled(self, name: str, enabled: bool) -> None:
        """A disabled connector is unbound by its owner and skipped by routing."""
        self.update_connector(name, enabled=enabled)

    def get_connector(self, name: str) -> ConnectorConfig:
        with self._config_read() as conn:
            return _connector(conn, t.connectors.c.name == name, name)

    def list_connectors(self) -> list[ConnectorConfig]:
        with self._config_read() as conn:
            rows = conn.execute(select(t.connectors).order_by(t.connectors.c.name))
            return [_connector_from_row(r) for r in rows]

    def remove_connector(self, name: str, *, force: bool = False) -> int:
        """Delete a connector and its status; returns how many route rules went with it.

        A connector still named by route rules is refused (``Conflict``) unless ``force``:
        removing it silently could leave a destination with no carrier.
        """
        with self._config_change(f"connector {name!r} is still in use") as conn:
            connector_id = _connector_id(conn, name)
            r = t.route_rules.c
            used = list(
                conn.execute(
                    select(t.routes.c.name, r.prefix)
                    .join(t.routes, t.routes.c.id == r.route_id)
                    .where(r.connector_id == connector_id)
                    .order_by(t.routes.c.name, r.prefix)
                )
            )
            if used and not force:
                where = ", ".join(f"{route} {prefix or '(any)'}" for route, prefix in used)
                raise Conflict(
                    f"connector {name!r} is used by {len(used)} route rule(s): {where}; "
                    "remove them first or force the removal"
                )
            # Explicit deletes: the schema cascades, but not every SQLite connection enforces it.
            conn.execute(delete(t.route_rules).where(r.connector_id == connector_id))
            conn.execute(
                delete(t.connector_status).where(t.connector_status.c.connector_id == connector_id)
            )
            conn.execute(delete(t.connectors).where(t.connectors.c.id == connector_id))
            return len(used)

    # -- route rules ------------------------------------------------------------------------

    def add_route_rule(
        self, route: str, connector: str, *, prefix: str = "", priority: int = 0, weight: int = 1
    ) -> RouteRuleInfo:
        """Let ``route`` send destinations starting with ``prefix`` through ``connector``."""
        where = f"for prefix {prefix}" if prefix else "for any destination"
        duplicate = f"route {route!r} already uses connector {connector!r} {where}"
        with self._config_change(duplicate) as conn:
            route_id = _route_id(conn, route)
            connector_id = _connector_id(conn, connector)
            r = t.route_rules.c
            if conn.scalar(
                select(r.id).where(
                    r.route_id == route_id, r.prefix == prefix, r.connector_id == connector_id
                )
            ):
                raise Conflict(duplicate)
            conn.execute(
                insert(t.route_rules).values(
                    route_id=route_id,
                    prefix=prefix,
                    connector_id=connector_id,
                    priority=priority,
                    weight=weight,
                )
            )
            added = r.route_id == route_id, r.connector_id == connector_id, r.prefix == prefix
            return _rules(conn, *added)[0]

    def remove_route_rule(self, route: str, connector: str, *, prefix: str = "") -> None:
        with self._config_change("the rule could not be removed") as conn:
            r = t.route_rules.c
            gone = conn.execute(
                delete(t.route_rules).where(
                    r.route_id == _route_id(conn, route),
                    r.connector_id == _connector_id(conn, connector),
                    r.prefix == prefix,
                )
            )
            if gone.rowcount == 0:
                where = f"prefix {prefix}" if prefix else "any destination (no prefix)"
                raise NotFound(f"route {route!r} has no rule for {where} via {connector!r}")

    def list_route_rules(self, route: str | None = None) -> list[RouteRuleInfo]:
        """Rules in the order routing reads them: route, longest prefix first, priority."""
        with self._config_read() as conn:
            if route is None:
                return _rules(conn)
            return _rules(conn, t.route_rules.c.route_id == _route_id(conn, route))

    # -- what the dispatcher reads ----------------------------------------------------------

    def load_routing(self) -> RoutingTable:
        """The routing table of the current configuration, with ``.version`` set.

        As in ``load_snapshot``, the version is read FIRST: a change committed meanwhile bumps
        the version past it, so the next poll reloads again and no change is missed.
        """
        with self._config_read() as conn:
            version = conn.scalar(
                select(t.config_version.c.version).where(t.config_version.c.id == 1)
            )
            routes = {
                str(name): int(rid)
                for rid, name in conn.execute(select(t.routes.c.id, t.routes.c.name))
            }
            r = t.route_rules.c
            rules = [
                RouteRule(
                    route_id=row.route_id,
                    prefix=row.prefix,
                    connector_id=row.connector_id,
                    priority=row.priority,
                    weight=row.weight,
                )
                for row in conn.execute(
                    select(r.route_id, r.prefix, r.connector_id, r.priority, r.weight)
                )
            ]
            connectors = {
                row.id: _connector_from_row(row) for row in conn.execute(select(t.connectors))
            }
        return RoutingTable.build(routes, rules, connectors, version=int(version or 0))

    # -- live status ------------------------------------------------------------------------

    def connector_statuses(self) -> list[ConnectorStatus]:
        """Every connector with its last written status, by name.

        A connector with no status row was never started: "down", or "disabled" when it is
        disabled in configuration; its ``updated_ms`` is None.
        """
        c, s = t.connectors.c, t.connector_status.c
        query = (
            select(c.id, c.name, c.enabled, c.window, *(s[f] for f in _STATUS_FIELDS))
            .select_from(t.connectors)
            .outerjoin(t.connector_status, s.connector_id == c.id)
            .order_by(c.name)
        )
        with self._config_read() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            if row.updated_ms is None:
                out.append(
                    ConnectorStatus(
                        connector_id=row.id,
                        name=row.name,
                        state="down" if row.enabled else "disabled",
                        window_size=row.window,
                        enabled=row.enabled,
                    )
                )
            else:
                values = {f: getattr(row, f) for f in _STATUS_FIELDS}
                out.append(
                    ConnectorStatus(
                        connector_id=row.id, name=row.name, enabled=row.enabled, **values
                    )
                )
        return out

    def write_connector_status(self, rows: Sequence[ConnectorStatus]) -> int:
        """Upsert the status of each connector in one transaction; returns rows written.

        Rows of connectors that no longer exist (removed by an operator meanwhile) are
        skipped. A row without ``updated_ms`` is stamped with the current time. Does not bump
        the config version.
        """
        if not rows:
            return 0
        now = self.now_ms()
        table = t.connector_status
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        stmt = dialect.insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.connector_id],
            set_={f: stmt.excluded[f] for f in _STATUS_FIELDS},
        )
        try:
            with self._write_lock, self.engine.begin() as conn:
                existing = set(
                    conn.scalars(
                        select(t.connectors.c.id).where(
                            t.connectors.c.id.in_({r.connector_id for r in rows})
                        )
                    )
                )
                params = [_status_params(r, now) for r in rows if r.connector_id in existing]
                if params:
                    conn.execute(stmt, params)
                return len(params)
        except DBAPIError as exc:
            raise StoreError(first_line(exc)) from exc


# -- row helpers (module level: they take the connection of the caller's transaction) --------


def _codings_set(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip())


def _connector_from_row(row: Row[Any]) -> ConnectorConfig:
    m = row._mapping
    values = {name: m[name] for name in _CONFIG_FIELDS}
    values.update(data_codings=_codings_set(m["data_codings"]), enabled=bool(m["enabled"]))
    return ConnectorConfig(**values)


def _connector(conn: Connection, where: Any, name: str) -> ConnectorConfig:
    row = conn.execute(select(t.connectors).where(where)).first()
    if row is None:
        raise NotFound(f"no connector {name!r}")
    return _connector_from_row(row)


def _connector_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(t.connectors.c.id).where(t.connectors.c.name == name))
    if found is None:
        raise NotFound(f"no connector {name!r}")
    return int(found)


def _route_id(conn: Connection, name: str) -> int:
    found = conn.scalar(select(t.routes.c.id).where(t.routes.c.name == name))
    if found is None:
        raise NotFound(f"no route {name!r}")
    return int(found)


def _rules(conn: Connection, *where: Any) -> list[RouteRuleInfo]:
    r = t.route_rules.c
    query = (
        select(
            r.id,
            t.routes.c.name.label("route"),
            t.connectors.c.name.label("connector"),
            t.connectors.c.enabled,
            r.prefix,
            r.priority,
            r.weight,
        )
        .join(t.routes, t.routes.c.id == r.route_id)
        .join(t.connectors, t.connectors.c.id == r.connector_id)
        .where(*where)
        .order_by(
            t.routes.c.name,
            func.length(r.prefix).desc(),
            r.prefix,
            r.priority,
            t.connectors.c.name,
        )
    )
    return [
        RouteRuleInfo(
            id=row.id,
            route=row.route,
            connector=row.connector,
            prefix=row.prefix,
            priority=row.priority,
            weight=row.weight,
            connector_enabled=bool(row.enabled),
        )
        for row in conn.execute(query)
    ]


def _status_params(status: ConnectorStatus, now: int) -> dict[str, Any]:
    return {
        "connector_id": status.connector_id,
        "state": status.state,
        "window_in_use": status.window_in_use,
        "window_size": status.window_size,
        "submit_rate": status.submit_rate,
        "submitted_total": status.submitted_total,
        "last_error": status.last_error,
        "owner": status.owner,
        "lease_until_ms": status.lease_until_ms,
        "updated_ms": now if status.updated_ms is None else status.updated_ms,
    }
