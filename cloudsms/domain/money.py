"""Exact money: amounts are integers of micro-units (1e-6 of the currency unit), never floats.

Micro-units let a per-segment price go below the smallest coin (carrier prices often have four or
more decimals) while sums stay exact integers in SQL and Python alike.
"""

from __future__ import annotations

import decimal

#: Settlement currencies of the document (附录 支持结算币种).
CURRENCIES = ("CNY", "HKD", "TWD", "EUR", "USD", "GBP", "AUD", "KRW", "JPY")
MICROS = 1_000_000


def parse_amount(text: str) -> int:
    """``"0.0525"`` → 52500 micro-units; ValueError for anything that is not an exact amount."""
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    micros = value * MICROS
    if micros != micros.to_integral_value():
        raise ValueError(f"more than 6 decimals: {text!r}")
    return int(micros)


def format_amount(micros: int) -> str:
    """52500 → ``"0.0525"``: exact, without trailing zeros beyond two decimals."""
    value = decimal.Decimal(micros) / MICROS
    text = f"{value:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def check_currency(code: str) -> str:
    upper = code.strip().upper()
    if upper not in CURRENCIES:
        raise ValueError(f"unknown currency {code!r}; one of {', '.join(CURRENCIES)}")
    return upper
