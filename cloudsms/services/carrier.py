"""The carrier service: operator actions on connectors and route rules, with validation.

Like ``cloudsms.services.operator``: each method takes raw operator input (strings as typed, or
ints from a JSON API), validates it here (``ConfigError`` with a readable message), and calls one
named store operation (of ``storage.interfaces.CarrierAdmin``), which reports ``NotFound`` /
``Conflict``.

    >>> carrier = CarrierOperator(store)
    >>> carrier.add_connector("hk-1", host="smsc.example.net", port="2775",
    ...                       system_id="acme", password="secret", data_codings="0,3,8")
    >>> carrier.add_rule("main", "hk-1", prefix="852", weight="3")

Limits, with where they come from (also in the operator docs):

* system_id ≤ 15, password ≤ 8, system_type ≤ 12 characters: SMPP 3.4 §4.1.1 (bind) gives the
  C-octet string sizes 16 / 9 / 13 including the terminating NUL; printable ASCII only.
* TON 0–6 (§5.2.5); NPI one of 0 1 3 4 6 8 9 10 14 18 (§5.2.6).
* data_coding: a subset of 0 (SMSC default alphabet, GSM 03.38), 3 (Latin-1), 8 (UCS-2) that
  includes 0 or 8, since every text must have an encoding the carrier takes (Latin-1 alone
  cannot carry Chinese, for one).
* window 1–1000 outstanding submits; throughput 0 (unlimited) to 100,000 segments/s; timers
  1–86,400 s (these ranges are declared with the settings, in ``ConnectorSettings``);
  route-rule priority 0–1000 (lower first), weight 1–10,000 (declared with the rule's options,
  in ``cloudsms.services.options``).
* Message-id modes: those of ``cloudsms.smpp.receipt.MESSAGE_ID_MODES``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from cloudsms.domain.routing import (
    BIND_MODES,
    DATA_CODINGS,
    LONG_MODES,
    BindMode,
    ConnectorConfig,
    ConnectorSettings,
    ConnectorStatus,
    Knob,
    LongMode,
    connector_knobs,
)
from cloudsms.exceptions import ConfigError
from cloudsms.services import validation as v
from cloudsms.services.options import RULE_PRIORITY, RULE_WEIGHT, Option
from cloudsms.smpp.constants import Npi, Ton
from cloudsms.smpp.receipt import MESSAGE_ID_MODES
from cloudsms.storage.carrier_ops import RouteRuleInfo
from cloudsms.storage.interfaces import CarrierAdmin

TONS: frozenset[int] = frozenset(int(x) for x in Ton)
NPIS: frozenset[int] = frozenset(int(x) for x in Npi)
#: What an operator types for "derive it from the sender" (source TON/NPI).
AUTO_WORDS = frozenset({"auto", "none", "-", ""})
#: What an operator types for "every destination" as a route-rule prefix.
ANY_PREFIX_WORDS = frozenset({"", "any", "*", "all"})

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")

Raw = str | int

# -- validators: raw input → stored form, or ConfigError --------------------------------------


def parse_int(value: Raw, what: str, low: int, high: int) -> int:
    """A whole number within [low, high]; ``" 50 "`` → 50."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ConfigError(f"{what} {value!r} must be a whole number from {low} to {high}")
    return int(text)


def _in_range(value: Raw, option: Option) -> int:
    """A whole number within the option's declared range."""
    if option.low is None or option.high is None:
        raise TypeError(f"option {option.name!r} declares no range")
    return parse_int(value, option.name, option.low, option.high)


def check_host(value: str) -> str:
    """A host name or IP address literal, at most 255 characters."""
    host = value.strip()
    if not host or len(host) > 255:
        raise ConfigError(f"host {value!r} must be 1 to 255 characters")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not all(_HOST_LABEL.fullmatch(label) for label in host.removesuffix(".").split(".")):
        raise ConfigError(f"host {value!r} is not a host name or IP address")
    return host


def _c_octet(value: str, what: str, limit: int, *, empty: bool) -> str:
    if not _PRINTABLE_ASCII.fullmatch(value) or (not value and not empty):
        need = "" if empty else "1 to "
        raise ConfigError(f"{what} must be {need}{limit} printable ASCII characters")
    if len(value) > limit:
        raise ConfigError(
            f"{what} is {len(value)} characters; SMPP 3.4 §4.1.1 allows at most {limit}"
        )
    return value


def check_system_id(value: str) -> str:
    return _c_octet(value, f"system_id {value!r}", 15, empty=False)


def check_password(value: str) -> str:
    # Never echo a password into an error message (it ends up in terminals and logs).
    return _c_octet(value, "password", 8, empty=True)


def check_system_type(value: str) -> str:
    return _c_octet(value, f"system_type {value!r}", 12, empty=True)


def check_bind_mode(value: str) -> BindMode:
    mode = value.strip().lower().replace("-", "_").replace("+", "_")
    if mode not in BIND_MODES:
        raise ConfigError(f"bind mode {value!r}: trx (one transceiver) or tx_rx (a TX+RX pair)")
    return mode


def check_long_mode(value: str) -> LongMode:
    mode = value.strip().lower()
    if mode not in LONG_MODES:
        raise ConfigError(f"long mode {value!r}: one of {', '.join(LONG_MODES)}")
    return mode


def parse_data_codings(value: str) -> frozenset[int]:
    """``"0,3,8"`` → {0, 3, 8}; spaces allowed, order and repeats do not matter."""
    parts = [p.strip() for p in str(value).replace(" ", ",").split(",") if p.strip()]
    if not parts or not all(p.isascii() and p.isdigit() for p in parts):
        raise ConfigError(f"data codings {value!r}: comma-separated values among 0, 3 and 8")
    codings = frozenset(int(p) for p in parts)
    if not codings <= DATA_CODINGS:
        bad = ", ".join(str(c) for c in sorted(codings - DATA_CODINGS))
        raise ConfigError(f"data codings {value!r}: {bad} not supported (only 0, 3 and 8)")
    if not codings & {0, 8}:
        raise ConfigError(
            f"data codings {value!r} must include 0 (GSM 03.38) or 8 (UCS-2): "
            "some texts cannot be sent otherwise"
        )
    return codings


def check_ton(value: Raw, what: str = "TON") -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) not in TONS:
        raise ConfigError(f"{what} {value!r} must be 0 to 6 (SMPP 3.4 §5.2.5)")
    return int(text)


def check_npi(value: Raw, what: str = "NPI") -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) not in NPIS:
        allowed = " ".join(str(n) for n in sorted(NPIS))
        raise ConfigError(f"{what} {value!r} must be one of {allowed} (SMPP 3.4 §5.2.6)")
    return int(text)


def _auto(value: Raw | None, check: Callable[[Raw, str], int], what: str) -> int | None:
    """A source TON/NPI, or None for "derive from the sender"."""
    if value is None or str(value).strip().lower() in AUTO_WORDS:
        return None
    return check(value, what)


def check_id_mode(value: str) -> str:
    mode = value.strip().lower().replace("-", "_")
    if mode not in MESSAGE_ID_MODES:
        raise ConfigError(f"id mode {value!r}: one of {', '.join(MESSAGE_ID_MODES)}")
    return mode


def check_rule_prefix(value: str | None) -> str:
    """A route-rule prefix: E.164 digits starting with a calling code, or "" / "any"."""
    if value is None or value.strip().lower() in ANY_PREFIX_WORDS:
        return ""
    return v.check_prefix(value)


#: Validators of the connector settings that are not plain whole numbers, by field name; the
#: numbers are range-checked from their ``Knob`` (see :func:`_validator`).
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "host": check_host,
    "system_id": check_system_id,
    "password": check_password,
    "system_type": check_system_type,
    "bind_mode": check_bind_mode,
    "long_mode": check_long_mode,
    "data_codings": parse_data_codings,
    "source_ton": lambda x: _auto(x, check_ton, "source TON"),
    "source_npi": lambda x: _auto(x, check_npi, "source NPI"),
    "dest_ton": lambda x: check_ton(x, "destination TON"),
    "dest_npi": lambda x: check_npi(x, "destination NPI"),
    "id_mode": check_id_mode,
}


def _validator(name: str, knob: Knob) -> Callable[[Any], Any]:
    if knob.low is not None and knob.high is not None:
        low, high, what = knob.low, knob.high, knob.option.replace("_", " ")
        return lambda x: parse_int(x, what, low, high)
    return _CHECKS[name]  # a KeyError here: a new setting needs a validator


#: option name → (column, validator) for connector settings given as raw input: the
#: ``ConnectorSettings`` fields operators edit (all but ``enabled``), plus the name.
_SETTINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "name": ("name", lambda x: v.check_name(x, "connector name")),
    **{
        knob.option: (f.name, _validator(f.name, knob))
        for f, knob in connector_knobs()
        if knob.editable
    },
}
SETTING_NAMES: tuple[str, ...] = tuple(_SETTINGS)


def connector_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate operator settings (keys of ``SETTING_NAMES``) → store columns and values.

    Every value is checked before anything is returned, so one typo refuses the whole change.
    """
    unknown = set(raw) - set(_SETTINGS)
    if unknown:
        raise ConfigError(f"unknown connector setting(s): {', '.join(sorted(unknown))}")
    return {_SETTINGS[key][0]: _SETTINGS[key][1](value) for key, value in raw.items()}


# -- the facade ---------------------------------------------------------------------------------


class CarrierOperator:
    """Operator actions on carrier connectors and route rules of one store."""

    def __init__(self, store: CarrierAdmin) -> None:
        self.store = store

    # -- connectors -------------------------------------------------------------------------

    def add_connector(
        self,
        name: str,
        *,
        host: str,
        port: Raw,
        system_id: str,
        password: str,
        **settings: Raw | None,
    ) -> ConnectorConfig:
        """Create a connector; ``settings`` are the optional ``SETTING_NAMES`` (None: default).

        The defaults are those of ``cloudsms.domain.routing.ConnectorSettings``.
        """
        given = {k: val for k, val in settings.items() if val is not None}
        columns = connector_settings(
            {
                "name": name,
                "host": host,
                "port": port,
                "system_id": system_id,
                "password": password,
                **given,
            }
        )
        return self.store.create_connector(columns.pop("name"), ConnectorSettings(**columns))

    def set_connector(
        self, name: str, *, rename: str | None = None, **settings: Raw | None
    ) -> list[str]:
        """Change the settings given (None: leave as is) in one change; what changed.

        For ``source_ton`` / ``source_npi``, "auto" goes back to deriving from the sender.
        """
        given = {k: val for k, val in settings.items() if val is not None}
        if rename is not None:
            given["name"] = rename
        if not given:
            raise ConfigError("nothing to change: give at least one setting")
        columns = connector_settings(given)
        self.store.update_connector(name, **columns)
        return sorted(given)

    def connector(self, name: str) -> ConnectorConfig:
        return self.store.get_connector(name)

    def connectors(self) -> list[ConnectorConfig]:
        return self.store.list_connectors()

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.store.set_connector_enabled(name, enabled)

    def remove_connector(self, name: str, *, force: bool = False) -> int:
        """Remove a connector; returns how many route rules went with it (``force`` only)."""
        return self.store.remove_connector(name, force=force)

    def statuses(self) -> list[ConnectorStatus]:
        return self.store.connector_statuses()

    # -- route rules ------------------------------------------------------------------------

    def add_rule(
        self,
        route: str,
        connector: str,
        *,
        prefix: str | None = None,
        priority: Raw = RULE_PRIORITY.default,
        weight: Raw = RULE_WEIGHT.default,
    ) -> RouteRuleInfo:
        """Send ``route``'s destinations starting with ``prefix`` (none: all) via ``connector``."""
        return self.store.add_route_rule(
            v.check_route_name(route),
            v.check_name(connector, "connector name"),
            prefix=check_rule_prefix(prefix),
            priority=_in_range(priority, RULE_PRIORITY),
            weight=_in_range(weight, RULE_WEIGHT),
        )

    def remove_rule(self, route: str, connector: str, *, prefix: str | None = None) -> None:
        self.store.remove_route_rule(route, connector, prefix=check_rule_prefix(prefix))

    def rules(self, route: str | None = None) -> list[RouteRuleInfo]:
        return self.store.list_route_rules(route)
