"""Customers' opt-out lists: ``OptOutOps``.

Every change is an operator-style configuration change (:mod:`cloudsms.storage.config_ops`):
one transaction that bumps ``config_version`` first, so the accept path of every running server
reloads its in-memory lists (``ConfigSnapshot.opt_outs_by_customer``) within a second, and two
changes of one number are serialised. Adding a number already listed and removing one that is
not are answered (False), not raised: a handset sending STOP twice is not an error; the operator
service turns them into ``Conflict`` / ``NotFound`` for people.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from cloudsms.domain.opt_out import OptOut, OptVia
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of


class OptOutOps(StoreBase):
    """Named operations on customers' opt-out lists."""

    def add_opt_out(
        self, customer: CustomerRef, number: str, *, via: OptVia, keyword: str | None = None
    ) -> bool:
        """Put ``number`` on the customer's list; False when it was there already (kept as is)."""
        with self._config_change() as conn:
            customer_id = customer_id_of(conn, customer)
            o = t.opt_outs.c
            # Serialised by the version bump above: check, then insert, is race-free.
            if conn.scalar(select(o.id).where(o.customer_id == customer_id, o.number == number)):
                return False
            conn.execute(
                insert(t.opt_outs).values(
                    customer_id=customer_id,
                    number=number,
                    via=via,
                    keyword=keyword,
                    created_ms=self.now_ms(),
                )
            )
            return True

    def remove_opt_out(self, customer: CustomerRef, number: str) -> bool:
        """Take ``number`` off the customer's list; False when it was not on it."""
        with self._config_change() as conn:
            customer_id = customer_id_of(conn, customer)
            o = t.opt_outs.c
            gone = conn.execute(
                delete(t.opt_outs).where(o.customer_id == customer_id, o.number == number)
            )
            return bool(gone.rowcount)

    def list_opt_outs(self, customer: CustomerRef | None = None) -> list[OptOut]:
        """One customer's list (every customer's when None), by customer then number."""
        with self._config_read() as conn:
            o = t.opt_outs.c
            query = select(t.opt_outs, t.customers.c.name).join(t.customers)
            if customer is not None:
                query = query.where(o.customer_id == customer_id_of(conn, customer))
            return [
                OptOut(
                    customer_id=r.customer_id,
                    customer=r.name,
                    number=r.number,
                    via=r.via,
                    keyword=r.keyword,
                    created_ms=r.created_ms,
                )
                for r in conn.execute(query.order_by(t.customers.c.name, o.number))
            ]
