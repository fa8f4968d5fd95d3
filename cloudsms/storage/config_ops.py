"""Operator configuration: the contract of its operation groups, and their shared helpers.

The groups, one subject each: ``customer_ops`` (customers, keys, networks, callback settings),
``price_ops`` (balance, ledger, price lists), ``route_ops`` (routes and grants),
``blacklist_ops``, ``registration_ops`` (signatures, templates, sender IDs, country policies)
and ``snapshot_ops`` (the configuration snapshot the accept path reads, and its version).

Strategy (carried out by ``StoreBase._config_change``): every change runs in ONE transaction
whose first statement bumps ``config_version.version`` (row id 1). That does three jobs at once:

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

from typing import Any

from sqlalchemy import Connection, select

from cloudsms.exceptions import NotFound
from cloudsms.storage import tables as t

#: A customer named by id or by name.
CustomerRef = int | str


def eq_or_null(column: Any, value: Any) -> Any:
    """``column = value`` that also matches NULL (SQL ``=`` never does)."""
    return column.is_(None) if value is None else column == value


def customer_match(ref: CustomerRef) -> Any:
    return t.customers.c.id == ref if isinstance(ref, int) else t.customers.c.name == ref


def customer_id_of(conn: Connection, ref: CustomerRef) -> int:
    """The id of customer ``ref``; NotFound when there is none."""
    found = conn.scalar(select(t.customers.c.id).where(customer_match(ref)))
    if found is None:
        raise NotFound(f"no customer {ref!r}")
    return int(found)
