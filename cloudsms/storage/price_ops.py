"""A customer's money and the price lists: ``PriceOps``.

Balance changes write a ledger row in the same transaction. Operator changes follow the
contract in :mod:`cloudsms.storage.config_ops`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, insert, select, update

from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of


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


class PriceOps(StoreBase):
    """Named operations on balances, the ledger and price lists."""

    # -- money ------------------------------------------------------------------------------

    def change_balance(
        self, ref: CustomerRef, delta_micros: int, *, actor: str, note: str | None = None
    ) -> int:
        """Add ``delta_micros`` (negative to deduct) and write the ledger row; new balance."""
        now = self.now_ms()
        with self._config_change() as conn:
            customer_id = customer_id_of(conn, ref)
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
            customer_id = customer_id_of(conn, ref)
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
            list_id, _ = price_list_row(conn, price_list)
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
            list_id, _ = price_list_row(conn, price_list)
            c = t.prices.c
            gone = conn.execute(
                delete(t.prices).where(c.price_list_id == list_id, c.prefix == prefix)
            )
            if gone.rowcount == 0:
                raise NotFound(f"price list {price_list!r} has no price for prefix {prefix}")

    def get_price_list(self, name: str) -> PriceList:
        with self._config_read() as conn:
            list_id, currency = price_list_row(conn, name)
            return PriceList(
                id=list_id,
                name=name,
                currency=currency,
                prices=prices_by_list(conn).get(list_id, {}),
            )

    def list_price_lists(self) -> list[PriceList]:
        with self._config_read() as conn:
            prices = prices_by_list(conn)
            rows = conn.execute(select(t.price_lists).order_by(t.price_lists.c.name))
            return [
                PriceList(id=r.id, name=r.name, currency=r.currency, prices=prices.get(r.id, {}))
                for r in rows
            ]


def price_list_row(conn: Connection, name: str) -> tuple[int, str]:
    row = conn.execute(
        select(t.price_lists.c.id, t.price_lists.c.currency).where(t.price_lists.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"no price list {name!r}")
    return int(row.id), str(row.currency)


def price_list_for(conn: Connection, name: str, currency: str) -> int:
    """The id of price list ``name``, which must be priced in ``currency``."""
    list_id, list_currency = price_list_row(conn, name)
    if list_currency != currency:
        raise Conflict(
            f"price list {name!r} is in {list_currency} but the customer is billed in {currency}"
        )
    return list_id


def prices_by_list(conn: Connection) -> dict[int, dict[str, int]]:
    prices: dict[int, dict[str, int]] = defaultdict(dict)
    p = t.prices.c
    for list_id, prefix, micros in conn.execute(
        select(p.price_list_id, p.prefix, p.price_micros).order_by(p.prefix)
    ):
        prices[list_id][prefix] = int(micros)
    return dict(prices)
