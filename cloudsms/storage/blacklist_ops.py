"""The blacklist, platform-wide and per customer: ``BlacklistOps``.

Operator changes follow the contract in :mod:`cloudsms.storage.config_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of, eq_or_null


@dataclass(frozen=True, slots=True, kw_only=True)
class BlacklistEntry:
    id: int
    number: str
    #: None: platform-wide
    customer_id: int | None
    customer: str | None
    note: str | None
    created_ms: int


class BlacklistOps(StoreBase):
    """Named operations on blacklisted numbers."""

    # -- blacklist --------------------------------------------------------------------------

    def add_blacklist(
        self, number: str, customer: CustomerRef | None = None, note: str | None = None
    ) -> None:
        """Blacklist a number for one customer, or platform-wide when ``customer`` is None."""
        scope = "platform-wide" if customer is None else f"for customer {customer!r}"
        with self._config_change(f"{number} is already blacklisted {scope}") as conn:
            customer_id = None if customer is None else customer_id_of(conn, customer)
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
            customer_id = None if customer is None else customer_id_of(conn, customer)
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
                query = query.where(b.customer_id == customer_id_of(conn, customer))
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


def _blacklist_match(number: str, customer_id: int | None) -> list[Any]:
    return [t.blacklist.c.number == number, eq_or_null(t.blacklist.c.customer_id, customer_id)]
