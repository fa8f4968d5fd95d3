"""Routing: which carrier connector takes a message for a ROUTE_ID and a destination.

Pure: no I/O, no clock. The store builds a :class:`RoutingTable` from operator configuration
(``CarrierOps.load_routing``); the dispatcher asks it, per message, where to send.

Semantics (the operator docs quote this):

1. **Route.** The ROUTE_ID the customer sent names a route. A name the table does not know
   decides ``"route_unknown"`` (LOCAL_REJECTED, SPEC §4). Whether the route is *granted* to the
   customer, or suspended, is decided earlier by the accept path from its config snapshot.
2. **Longest prefix.** A route's rules each carry a prefix of E.164 digits (calling code first;
   ``""`` matches every destination). The number (calling code + MSISDN digits, no ``+``) is
   matched against them and the LONGEST matching prefix wins: all rules with exactly that prefix
   are the candidates, shorter prefixes are not consulted. No matching rule decides
   ``"no_carrier"`` (LOCAL_REJECTED).
3. **Disabled connectors** (``enabled = False`` in configuration) are treated as if their rules
   did not exist: a rule for ``8526`` on a disabled connector lets ``852`` numbers fall back to
   the ``852`` (or ``""``) rule. If every matching rule points at a disabled connector, that is
   ``"no_carrier"`` too.
4. **Priority = failover.** The candidates are grouped by priority, lower first. The first group
   with at least one *available* connector (the caller's ``available(connector_id)``: bound, not
   throttled, not rejecting) serves the message; later groups are the failover.
5. **Weight = share.** Within that group the available connectors share traffic by weight with
   smooth weighted round-robin (nginx's algorithm): per pick, every available member adds its
   weight to its running score, the highest score wins and gives back the group's total. Shares
   are exact over time (3:1 gives exactly 75/25 over every 4 picks) and interleaved (a b a a, not
   a a a b). The scores live in the table, one set per (route, prefix, priority) group, and start
   over when the table is rebuilt after a configuration change. A connector that is down keeps
   its score frozen and takes no share until it is back.
6. **All down.** If no group has an available connector the decision is ``"all_down"``: not a
   rejection — the dispatcher keeps the message queued and asks again later.

A decision is an ``int`` (the connector id) or one of the three strings above::

    table = RoutingTable.build({"main": 1}, rules, connectors)
    match table.select("main", "85261234567", available=lambda cid: cid in bound):
        case int(connector_id): ...
        case "all_down": ...          # retry later
        case cause: reject(cause)     # "route_unknown" / "no_carrier": LOCAL_REJECTED

Speed: ``build`` precomputes, per route, a dict prefix → priority groups and the distinct prefix
lengths in decreasing order, so ``select`` costs one dict lookup per distinct prefix length of
the route (a handful) plus the group pick; no sorting, no regex, no allocation on the hot path.

The table is not thread-safe (``select`` advances the round-robin scores): one table per
dispatcher, used from its event loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any, Final, Literal

from cloudsms.smpp.receipt import MessageIdMode

BindMode = Literal["trx", "tx_rx"]
LongMode = Literal["udh8", "udh16", "sar", "payload"]
ConnectorState = Literal["down", "connecting", "bound", "throttled", "disabled"]

BIND_MODES: Final[tuple[BindMode, ...]] = ("trx", "tx_rx")
LONG_MODES: Final[tuple[LongMode, ...]] = ("udh8", "udh16", "sar", "payload")
CONNECTOR_STATES: Final[tuple[ConnectorState, ...]] = (
    "down",
    "connecting",
    "bound",
    "throttled",
    "disabled",
)
#: data_coding values a connector may take: 0 SMSC default (GSM 03.38), 3 Latin-1, 8 UCS-2.
DATA_CODINGS: Final = frozenset({0, 3, 8})

ROUTE_UNKNOWN: Final = "route_unknown"
NO_CARRIER: Final = "no_carrier"
ALL_DOWN: Final = "all_down"
#: Causes that reject the message (LOCAL_REJECTED); ``"all_down"`` is not one of them.
RejectCause = Literal["route_unknown", "no_carrier"]
#: A connector id, or why there is none.
Decision = int | Literal["route_unknown", "no_carrier", "all_down"]

# SMPP 3.4 §5.2.5 / §5.2.6: type of number and numbering plan indicator values used below.
_TON_UNKNOWN, _TON_INTERNATIONAL, _TON_ALPHANUMERIC = 0, 1, 5
_NPI_UNKNOWN, _NPI_ISDN = 0, 1
#: Digit-only senders up to this length are short codes, not international numbers: the
#: shortest E.164 number with its calling code has 7 digits (e.g. Niue, +683 xxxx).
SHORT_CODE_MAX_DIGITS: Final = 6


@dataclass(frozen=True, slots=True)
class Knob:
    """How operators reach one connector setting: the metadata of a ``ConnectorSettings`` field.

    The CLI's ``connectors add/set`` options, the admin API's parameters and the carrier
    service's validation are generated from these, so a setting is declared once.
    """

    #: The name operators type: ``--bind`` on the CLI, ``bind`` in the admin API and the service.
    option: str
    help: str
    #: A whole number from ``low`` to ``high`` (both None: not a plain number).
    low: int | None = None
    high: int | None = None
    #: Never echoed (the CLI prompts for it with hidden input on ``add``).
    secret: bool = False
    #: Changed by ``add``/``set``; False for ``enabled``, which has its own operations.
    editable: bool = True


def _knob(option: str, help: str, **kw: Any) -> dict[str, Knob]:
    """The metadata of a ``ConnectorSettings`` field."""
    return {"knob": Knob(option, help, **kw)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSettings:
    """What an operator sets on an SMPP client connector, with the defaults: declared once.

    The store creates connectors from it (``CarrierOps.create_connector``), the schema's column
    defaults, the carrier service's validation, the CLI options and the admin parameters are
    derived from its fields (see :func:`connector_knobs`).
    """

    host: str = field(metadata=_knob("host", "SMSC host name or IP address."))
    port: int = field(metadata=_knob("port", "SMSC port (1-65535).", low=1, high=65_535))
    #: Bind credentials (SMPP 3.4 §4.1.1: system_id ≤ 15, password ≤ 8, system_type ≤ 12).
    system_id: str = field(metadata=_knob("system_id", "Bind system_id (≤ 15 characters)."))
    password: str = field(
        repr=False, metadata=_knob("password", "Bind password (≤ 8 characters).", secret=True)
    )
    system_type: str = field(
        default="", metadata=_knob("system_type", "Bind system_type (≤ 12 characters).")
    )
    #: One transceiver bind, or a transmitter plus a receiver bind.
    bind_mode: BindMode = field(
        default="trx", metadata=_knob("bind", "trx (one transceiver) or tx_rx (TX+RX pair).")
    )
    #: Outstanding submit_sm without a response, at most.
    window: int = field(
        default=50,
        metadata=_knob("window", "Outstanding submits at most (1-1000).", low=1, high=1000),
    )
    #: Segments per second at most; 0 means unlimited.
    throughput: int = field(
        default=0,
        metadata=_knob("throughput", "Segments per second, 0 = unlimited.", low=0, high=100_000),
    )
    enquire_link_s: int = field(
        default=30,
        metadata=_knob("enquire_link", "Seconds between enquire_link.", low=1, high=86_400),
    )
    response_timeout_s: int = field(
        default=30,
        metadata=_knob("response_timeout", "Seconds to wait for a response.", low=1, high=86_400),
    )
    #: Reconnect backoff doubles up to this many seconds.
    reconnect_max_s: int = field(
        default=30,
        metadata=_knob("reconnect_max", "Longest reconnect backoff, seconds.", low=1, high=86_400),
    )
    #: How long messages are split: UDH with 8- or 16-bit reference, sar_* TLVs, message_payload.
    long_mode: LongMode = field(
        default="udh8", metadata=_knob("long_mode", "udh8, udh16, sar or payload.")
    )
    #: data_coding values the carrier takes (subset of 0, 3, 8).
    data_codings: frozenset[int] = field(
        default=frozenset({0, 8}),
        metadata=_knob("data_codings", 'data_coding values taken, e.g. "0,3,8" (0 or 8 required).'),
    )
    #: None: derived from each sender (see :func:`source_address_params`).
    source_ton: int | None = field(
        default=None, metadata=_knob("source_ton", 'Source TON 0-6, or "auto" (from sender).')
    )
    source_npi: int | None = field(
        default=None, metadata=_knob("source_npi", 'Source NPI, or "auto" (from sender).')
    )
    dest_ton: int = field(
        default=_TON_INTERNATIONAL, metadata=_knob("dest_ton", "Destination TON.")
    )
    dest_npi: int = field(default=_NPI_ISDN, metadata=_knob("dest_npi", "Destination NPI."))
    #: How the carrier writes message ids (a mode of ``cloudsms.smpp.receipt``).
    id_mode: MessageIdMode = field(
        default="as_is",
        metadata=_knob("id_mode", "Message id form: as_is, ignore_case, hex, decimal, …"),
    )
    enabled: bool = field(
        default=True,
        metadata=_knob(
            "enabled", "false: unbound by its owner and skipped by routing.", editable=False
        ),
    )

    @property
    def latin1(self) -> bool:
        """Whether the carrier takes data_coding 3 (ISO-8859-1)."""
        return 3 in self.data_codings


def connector_knobs() -> tuple[tuple[Field[Any], Knob], ...]:
    """Every ``ConnectorSettings`` field with its :class:`Knob`, in declaration order."""
    return tuple((f, f.metadata["knob"]) for f in fields(ConnectorSettings))


def connector_default(name: str) -> Any:
    """The default of a ``ConnectorSettings`` field (``dataclasses.MISSING`` if required)."""
    return ConnectorSettings.__dataclass_fields__[name].default


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorConfig(ConnectorSettings):
    """An SMPP client connector as the operator configured it (one ``connectors`` row)."""

    id: int
    name: str
    created_ms: int = 0
    updated_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    """One rule of a route: destinations starting with ``prefix`` may go to ``connector_id``."""

    route_id: int
    #: E.164 digits, calling code first; "" matches every destination.
    prefix: str
    connector_id: int
    #: Lower is tried first; higher priorities are the failover.
    priority: int = 0
    #: Share among the available connectors of the same route, prefix and priority.
    weight: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorStatus:
    """The live state of a connector, written every second by the process that owns it."""

    connector_id: int
    #: The connector's name (filled in when read; ignored when written).
    name: str = ""
    state: ConnectorState = "down"
    window_in_use: int = 0
    window_size: int = 0
    #: Segments submitted per second over the last interval.
    submit_rate: int = 0
    submitted_total: int = 0
    last_error: str | None = None
    #: The process that owns the connector, and until when its ownership lease runs.
    owner: str | None = None
    lease_until_ms: int | None = None
    #: None: no status was ever written (the connector was never started).
    updated_ms: int | None = None
    #: Whether the connector is enabled in configuration (filled in when read).
    enabled: bool = True


def source_address_params(sender: str, cfg: ConnectorConfig) -> tuple[int, int]:
    """The (source_addr_ton, source_addr_npi) to submit ``sender`` with on connector ``cfg``.

    A value configured on the connector wins; each one left None is derived from the sender:

    * alphanumeric sender ID (any character other than digits and one leading ``+``):
      TON 5 alphanumeric, NPI 0 unknown (SMPP 3.4 §5.2.5; GSM 03.40 §9.1.2.5);
    * digits longer than :data:`SHORT_CODE_MAX_DIGITS` (an E.164 number, calling code first):
      TON 1 international, NPI 1 ISDN/E.164;
    * shorter digit strings (short codes such as ``10690``): TON 0 unknown, NPI 1 ISDN, because
      calling them international would make the carrier read a calling code into them.

    >>> source_address_params("ACME", cfg)
    (5, 0)
    >>> source_address_params("85261234567", cfg)
    (1, 1)
    """
    digits = sender[1:] if sender.startswith("+") else sender
    if not digits or not (digits.isascii() and digits.isdigit()):
        ton, npi = _TON_ALPHANUMERIC, _NPI_UNKNOWN
    elif len(digits) > SHORT_CODE_MAX_DIGITS:
        ton, npi = _TON_INTERNATIONAL, _NPI_ISDN
    else:
        ton, npi = _TON_UNKNOWN, _NPI_ISDN
    return (
        ton if cfg.source_ton is None else cfg.source_ton,
        npi if cfg.source_npi is None else cfg.source_npi,
    )


class _Group:
    """Connectors of one (route, prefix, priority), with their smooth-WRR scores."""

    __slots__ = ("current", "ids", "weights")

    def __init__(self, members: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(members)  # by connector id: deterministic whatever the row order
        self.ids: tuple[int, ...] = tuple(cid for cid, _ in ordered)
        self.weights: tuple[int, ...] = tuple(max(1, w) for _, w in ordered)
        self.current: list[int] = [0] * len(ordered)

    def pick(self, available: Callable[[int], bool]) -> int | None:
        ids = self.ids
        if len(ids) == 1:
            return ids[0] if available(ids[0]) else None
        current, weights = self.current, self.weights
        total = 0
        best = -1
        for i, connector_id in enumerate(ids):
            if not available(connector_id):
                continue
            current[i] += weights[i]
            total += weights[i]
            if best < 0 or current[i] > current[best]:
                best = i
        if best < 0:
            return None
        current[best] -= total
        return ids[best]


class _RoutePlan:
    """One route's rules, ready for longest-prefix lookups."""

    __slots__ = ("connector_ids", "lengths", "prefixes")

    def __init__(self, prefixes: dict[str, tuple[_Group, ...]]) -> None:
        self.prefixes = prefixes
        #: Distinct prefix lengths, longest first ("" is length 0 and comes last).
        self.lengths: tuple[int, ...] = tuple(sorted({len(p) for p in prefixes}, reverse=True))
        self.connector_ids: frozenset[int] = frozenset(
            cid for groups in prefixes.values() for g in groups for cid in g.ids
        )

    def candidates(self, number: str) -> tuple[_Group, ...] | None:
        prefixes = self.prefixes
        size = len(number)
        for length in self.lengths:
            if length <= size:
                groups = prefixes.get(number[:length])
                if groups is not None:
                    return groups
        return None


class RoutingTable:
    """Routes → rules → connectors, precomputed for :meth:`select`; see the module docstring."""

    def __init__(
        self,
        plans: dict[str, _RoutePlan],
        connectors: Mapping[int, ConnectorConfig],
        version: int,
    ) -> None:
        self._plans = plans
        #: Every configured connector by id, enabled or not.
        self.connectors: Mapping[int, ConnectorConfig] = connectors
        #: The ``config_version`` the table was read at (0 when built by hand).
        self.version = version

    @classmethod
    def build(
        cls,
        routes: Mapping[str, int],
        rules: Iterable[RouteRule],
        connectors: Mapping[int, ConnectorConfig],
        *,
        version: int = 0,
    ) -> RoutingTable:
        """Precompute the table from route name → id, the rules and connector id → config.

        Rules of unknown routes, and rules whose connector is unknown or disabled, are dropped.

        >>> table = RoutingTable.build({"main": 1}, [RouteRule(route_id=1, prefix="852",
        ...     connector_id=7)], {7: hk_connector})
        >>> table.select("main", "85261234567", available=lambda cid: True)
        7
        """
        names = {route_id: name for name, route_id in routes.items()}
        # route name → prefix → priority → [(connector id, weight)]
        tree: dict[str, dict[str, dict[int, list[tuple[int, int]]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        for rule in rules:
            name = names.get(rule.route_id)
            connector = connectors.get(rule.connector_id)
            if name is None or connector is None or not connector.enabled:
                continue
            tree[name][rule.prefix][rule.priority].append((rule.connector_id, rule.weight))
        plans = {name: _RoutePlan({}) for name in routes}
        for name, by_prefix in tree.items():
            plans[name] = _RoutePlan(
                {
                    prefix: tuple(_Group(by_priority[p]) for p in sorted(by_priority))
                    for prefix, by_priority in by_prefix.items()
                }
            )
        return cls(plans, dict(connectors), version)

    def select(self, route_name: str, number: str, *, available: Callable[[int], bool]) -> Decision:
        """The connector for a message to ``number`` (E.164 digits) on route ``route_name``.

        Returns a connector id, ``"route_unknown"``, ``"no_carrier"`` or ``"all_down"``.
        ``available`` is called only for connectors that could take the message.
        """
        plan = self._plans.get(route_name)
        if plan is None:
            return ROUTE_UNKNOWN
        groups = plan.candidates(number)
        if groups is None:
            return NO_CARRIER
        for group in groups:
            picked = group.pick(available)
            if picked is not None:
                return picked
        return ALL_DOWN

    def reject_cause(self, route_name: str, number: str) -> RejectCause | None:
        """Why a message could never be routed (LOCAL_REJECTED), whatever the links do; or None.

        Configuration only: cheap enough for the accept path, and it advances no round-robin.
        """
        plan = self._plans.get(route_name)
        if plan is None:
            return ROUTE_UNKNOWN
        if plan.candidates(number) is None:
            return NO_CARRIER
        return None

    def latin1_capable(self, route_name: str) -> bool:
        """True only if every connector the route can use takes data_coding 3 (Latin-1).

        A route with no usable connector, or an unknown route, is not Latin-1 capable: the API
        then encodes non-GSM text as UCS-2, which every connector takes.
        """
        plan = self._plans.get(route_name)
        if plan is None or not plan.connector_ids:
            return False
        return all(self.connectors[cid].latin1 for cid in plan.connector_ids)

    def route_connectors(self, route_name: str) -> frozenset[int]:
        """Ids of the enabled connectors a route's rules point at (empty if unknown)."""
        plan = self._plans.get(route_name)
        return frozenset() if plan is None else plan.connector_ids

    @property
    def route_names(self) -> frozenset[str]:
        return frozenset(self._plans)
