"""Test data written straight into the schema, independent of the operator service layer."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

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
    with_carrier: bool = True,
    carrier_port: int = 9,
    **customer_fields: object,
) -> Seeded:
    """A customer with a price list (852, 86 and 65 priced), a granted route and a carrier.

    The carrier is a connector row with a catch-all rule on the route, to an SMSC at
    127.0.0.1:``carrier_port``; at the default port nothing listens, so API tests (role "api")
    accept messages that no dispatcher touches.
    """
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
        if (
            with_carrier
            and not conn.execute(
                select(tables.route_rules.c.id).where(tables.route_rules.c.route_id == route_id)
            ).first()
        ):
            add_carrier(conn, int(route_id), port=carrier_port)
    bump(engine)
    return Seeded(int(customer_id), key, route, int(list_id))


def add_carrier(
    conn: Connection, route_id: int, *, name: str = "carrier-1", port: int = 9, prefix: str = ""
) -> int:
    """A connector (SMSC at 127.0.0.1:``port``) and a rule sending ``prefix`` of the route to it."""
    existing = conn.execute(
        select(tables.connectors.c.id).where(tables.connectors.c.name == name)
    ).scalar()
    connector_id = (
        existing
        or conn.execute(
            tables.connectors.insert().values(
                name=name,
                host="127.0.0.1",
                port=port,
                system_id="cloudsms",
                password="secret",
                system_type="",
                bind_mode="trx",
                window=50,
                throughput=0,
                enquire_link_s=30,
                response_timeout_s=5,
                reconnect_max_s=2,
                long_mode="udh8",
                data_codings="0,8",
                dest_ton=1,
                dest_npi=1,
                id_mode="as_is",
                enabled=True,
                created_ms=now_ms(),
                updated_ms=now_ms(),
            )
        ).inserted_primary_key[0]
    )
    conn.execute(
        tables.route_rules.insert().values(
            route_id=route_id, prefix=prefix, connector_id=connector_id, priority=0, weight=1
        )
    )
    return int(connector_id)
