"""Test data written straight into the schema, independent of the operator service layer."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from sqlalchemy import Engine, update

from cloudsms.storage import tables

KEY_ALPHABET = string.ascii_letters + string.digits


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(128))


def bump(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(tables.config_version)
            .where(tables.config_version.c.id == 1)
            .values(version=tables.config_version.c.version + 1)
        )


@dataclass
class Seeded:
    customer_id: int
    auth_key: str
    route: str
    price_list_id: int


def seed_customer(
    engine: Engine,
    *,
    name: str = "acme",
    currency: str = "HKD",
    balance_micros: int = 1_000_000_000,
    route: str = "VerifyCode_516",
    prices: dict[str, int] | None = None,
    **customer_fields: object,
) -> Seeded:
    """A customer with a price list (852 and 86 priced by default) and a granted route."""
    key = new_key()
    prices = {"852": 50_000, "86": 40_000, "65": 30_000} if prices is None else prices
    with engine.begin() as conn:
        list_id = conn.execute(
            tables.price_lists.insert().values(name=f"{name}-prices", currency=currency)
        ).inserted_primary_key[0]
        for prefix, micros in prices.items():
            conn.execute(
                tables.prices.insert().values(
                    price_list_id=list_id, prefix=prefix, price_micros=micros
                )
            )
        values: dict[str, object] = {
            "name": name,
            "auth_key": key,
            "enabled": True,
            "currency": currency,
            "balance_micros": balance_micros,
            "credit_limit_micros": 0,
            "price_list_id": list_id,
            "report_intermediate": False,
            "created_ms": now_ms(),
            "updated_ms": now_ms(),
        }
        values.update(customer_fields)
        customer_id = conn.execute(tables.customers.insert().values(**values)).inserted_primary_key[
            0
        ]
        route_id = conn.execute(
            tables.routes.select().where(tables.routes.c.name == route)
        ).scalar()
        if route_id is None:
            route_id = conn.execute(
                tables.routes.insert().values(name=route, latin1=False, enabled=True)
            ).inserted_primary_key[0]
        conn.execute(
            tables.route_grants.insert().values(customer_id=customer_id, route_id=route_id)
        )
    bump(engine)
    return Seeded(int(customer_id), key, route, int(list_id))
