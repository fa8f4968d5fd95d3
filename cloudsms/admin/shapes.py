"""The JSON shapes of the admin API's answers (also what the console and the portal render).

Plain JSON-ready dicts built from the store's value objects; amounts are decimal strings (never
floats) next to their integer micro-units, passwords are masked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cloudsms.admin.context import fmt_money
from cloudsms.domain import reasons
from cloudsms.domain.codes import LOCAL_REJECTED
from cloudsms.domain.routing import ConnectorConfig
from cloudsms.domain.status import MessageState
from cloudsms.storage.admin_ops import FoundMessage, Lifecycle
from cloudsms.storage.customer_ops import CustomerInfo
from cloudsms.storage.price_ops import PriceList
from cloudsms.storage.registration_ops import Registration

STATES = tuple(s.value for s in MessageState)


def customer_json(c: CustomerInfo, *, with_key: bool = False) -> dict[str, Any]:
    data = dataclasses.asdict(c)
    data.pop("auth_key")
    data["balance"] = fmt_money(c.balance_micros)
    data["credit_limit"] = fmt_money(c.credit_limit_micros)
    if with_key:
        data["auth_key"] = c.auth_key
    return data


def registration_json(r: Registration) -> dict[str, Any]:
    return dataclasses.asdict(r)


def message_json(found: FoundMessage) -> dict[str, Any]:
    data = dataclasses.asdict(found.record)
    data["state"] = found.record.state.value
    data["customer"] = found.customer
    data["connector"] = found.connector
    data["number"] = f"{found.record.country_code}{found.record.dest_msisdn}"
    data["fee"] = fmt_money(found.record.fee_micros)
    data["reason"] = _reason(found)
    return data


def _reason(found: FoundMessage) -> str | None:
    """Why a message was rejected by the platform itself, in the customer's words; else None.

    The console and the portal show it on the message page; ``detail`` keeps the cause code.
    """
    m = found.record
    if m.result_desc != LOCAL_REJECTED or not m.detail:
        return None
    return reasons.local_rejected(
        m.detail, route=m.route_name, country_code=m.country_code, msisdn=m.dest_msisdn
    )


def lifecycle_json(life: Lifecycle) -> dict[str, Any]:
    return {
        "message": message_json(life.message),
        "parts": life.parts,
        "receipts": life.receipts,
        "reports": life.reports,
        "attempts": life.attempts,
    }


def as_dicts(items: Any) -> list[dict[str, Any]]:
    return [dataclasses.asdict(x) for x in items]


def connector_json(c: ConnectorConfig) -> dict[str, Any]:
    data = dataclasses.asdict(c)
    data["password"] = "***" if c.password else ""
    data["data_codings"] = sorted(c.data_codings)
    return data


def price_list_json(p: PriceList) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "currency": p.currency,
        "prices": {prefix: fmt_money(m) for prefix, m in p.prices.items()},
    }
