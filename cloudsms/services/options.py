"""Operation options the admin API and the CLI share: declared here once.

An :class:`Option` names one input of an operator action (as the service takes it), its kind,
its help text, its range and default and, where the CLI spells it otherwise for history's sake,
the CLI name (or takes it as a positional argument). The admin operation table
(``cloudsms.admin.operations``) turns them into ``Param`` rows and the CLI
(``cloudsms.cli._common.with_options``) into Typer arguments and options, so both front ends take
the same inputs with the same help; the services validate them (with the ranges declared here),
so both refuse the same mistakes.

One block per subject: customers, price lists, routes and their rules, connectors (derived from
``cloudsms.domain.routing.ConnectorSettings``, where those settings are declared), blacklist,
country policies, opt-out lists, registrations. Path segments of the admin API
(``/customers/{name}``) and the CLI's matching arguments are named by each front end; everything
else an action takes is here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from cloudsms.domain.routing import ConnectorSettings, connector_knobs

OptionKind = Literal["string", "integer", "boolean", "money"]


@dataclass(frozen=True, slots=True)
class Option:
    """One input of an operator action."""

    name: str
    kind: OptionKind = "string"
    required: bool = False
    help: str = ""
    #: The CLI's option name (``--callback``) when it is not the ``name`` (``callback_url``).
    cli: str | None = None
    #: Prompted for with hidden input on the CLI when not given.
    secret: bool = False
    #: The value an action takes when the option is left out, as the help shows it ("": none
    #: worth showing).
    default: str = ""
    #: A whole number from ``low`` to ``high`` (the service checks it; the help says it).
    low: int | None = None
    high: int | None = None
    #: The only values taken (the admin API refuses others; the service checks them too).
    choices: tuple[str, ...] = ()
    #: The CLI takes it as a positional argument (shown as ``metavar`` when given), not an option.
    argument: bool = False
    metavar: str | None = None

    @property
    def description(self) -> str:
        """The help with the range and the default, as both front ends show it."""
        text = self.help
        if self.low is not None and self.high is not None:
            text = f"{text.removesuffix('.')} ({self.low}-{self.high})."
        return f"{text} Default: {self.default}." if self.default else text


# -- customers --------------------------------------------------------------------------------

_CALLBACK = Option(
    "callback_url", help='http(s) URL for delivery reports; "none" removes it.', cli="callback"
)
_CREDIT_LIMIT = Option("credit_limit", "money", help="How far below 0 the balance may go.")
_SENDER = 'Sender ID for packets without ORIGINAL_ADDR; "none" clears.'
_PRICE_LIST = Option("price_list", help='Price list (same currency); "none" removes it.')

#: The name a customer is created with (elsewhere a path segment, named by each front end).
CUSTOMER_NAME = Option("name", required=True, argument=True, help="Customer name.")

#: ``Operator.create_customer``'s options (the name aside).
CUSTOMER_CREATE: tuple[Option, ...] = (
    Option("currency", required=True, help="Billing currency (CNY HKD TWD EUR USD …)."),
    _PRICE_LIST,
    _CALLBACK,
    dataclasses.replace(_CREDIT_LIMIT, default="0"),
    Option("balance", "money", help="Opening balance (ledgered).", default="0"),
    Option("default_sender", help=_SENDER, cli="sender"),
)

#: ``Operator.top_up`` and ``adjust_balance``.
MONEY_CHANGE: tuple[Option, ...] = (
    Option(
        "amount", "money", required=True, argument=True, help="Exact decimal, e.g. 100 or 12.5."
    ),
    Option("note", help="Recorded in the balance ledger."),
)

#: ``Operator.add_network`` and ``remove_network``.
NETWORK: tuple[Option, ...] = (
    Option(
        "cidr",
        required=True,
        argument=True,
        help="Source IP or CIDR, v4 or v6 (a single address is /32 or /128).",
    ),
)

#: ``Operator.update_settings``'s options: each None (not given) leaves the setting as it is.
CUSTOMER_SETTINGS: tuple[Option, ...] = (
    Option("default_sender", help=_SENDER),
    Option(
        "max_backlog",
        "integer",
        help='Queue_too_large above this many waiting messages; "none": the platform default.',
    ),
    Option("report_intermediate", "boolean", help="Also push ENROUTE / ACCEPTED reports."),
    Option(
        "client_cert_sha256",
        help='Client certificate fingerprint the key must come with; "none" clears.',
    ),
    _PRICE_LIST,
)

#: Customer settings that have actions of their own (the CLI's enable/disable, set-callback,
#: set-credit-limit); the admin API changes them with the others.
CUSTOMER_STATE: tuple[Option, ...] = (
    Option("enabled", "boolean", help="false: the AUTH_KEY stops working (Channel_not_exist)."),
    _CALLBACK,
    _CREDIT_LIMIT,
)


# -- price lists ------------------------------------------------------------------------------

#: ``Operator.create_price_list``.
PRICE_LIST_CREATE: tuple[Option, ...] = (
    Option("name", required=True, argument=True, help="Price list name."),
    Option("currency", required=True, help="Currency of every price in the list."),
)

#: ``Operator.set_price`` (the list and the prefix name where).
PRICE: tuple[Option, ...] = (
    Option(
        "amount",
        "money",
        required=True,
        argument=True,
        help="Price per segment, exact decimal (e.g. 0.0525).",
    ),
)


# -- routes and their rules -------------------------------------------------------------------

#: ``Operator.create_route``.
ROUTE_CREATE: tuple[Option, ...] = (
    Option(
        "name",
        required=True,
        argument=True,
        help="The ROUTE_ID customers send.",
        metavar="route_id",
    ),
    Option("latin1", "boolean", help="The route's carriers take Latin-1 (DCS 3)."),
    Option("description", help="Free text for operators."),
)

#: ``Operator.grant_route`` (the route named where).
ROUTE_GRANT: tuple[Option, ...] = (
    Option("customer", required=True, argument=True, help="Customer name."),
)

#: ``CarrierOperator.remove_rule``: what names a rule of a route.
RULE_KEY: tuple[Option, ...] = (
    Option("connector", required=True, argument=True, help="Connector name."),
    Option("prefix", help='E.164 prefix, calling code first (852, 8526); omit or "any" for all.'),
)
RULE_PRIORITY = Option(
    "priority", "integer", help="Lower is tried first.", default="0", low=0, high=1000
)
RULE_WEIGHT = Option(
    "weight", "integer", help="Share within the priority.", default="1", low=1, high=10_000
)
#: ``CarrierOperator.add_rule``.
RULE_ADD: tuple[Option, ...] = (*RULE_KEY, RULE_PRIORITY, RULE_WEIGHT)


# -- connectors -------------------------------------------------------------------------------


#: The name a connector is created with (elsewhere a path segment, named by each front end).
CONNECTOR_NAME = Option("name", required=True, argument=True, help="Connector name.")


def connector_options(*, create: bool) -> tuple[Option, ...]:
    """The connector settings (``ConnectorSettings``) that ``CarrierOperator`` takes.

    Creating, the settings without a default are required. ``enabled`` is not one of them
    (a connector is created enabled): see :data:`CONNECTOR_ENABLED`.
    """
    options = []
    for f, knob in connector_knobs():
        if not knob.editable:
            continue
        kind: OptionKind = "integer" if knob.low is not None else "string"
        required = create and f.default is dataclasses.MISSING
        default = _default_text(f.default) if create and not required else ""
        options.append(
            Option(knob.option, kind, required, knob.help, secret=knob.secret, default=default)
        )
    return tuple(options)


#: A connector setting with actions of its own (enable, disable); the admin API changes it with
#: the others.
CONNECTOR_ENABLED = Option(
    "enabled",
    "boolean",
    help=ConnectorSettings.__dataclass_fields__["enabled"].metadata["knob"].help,
)


def _default_text(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, frozenset):
        return ",".join(str(x) for x in sorted(value))
    return str(value)


# -- blacklist --------------------------------------------------------------------------------

_NUMBER = Option(
    "number",
    required=True,
    argument=True,
    help="Calling code + number, digits, e.g. 85261234567.",
)
_SCOPE = Option("customer", help="Only for this customer (default: platform-wide).", cli="customer")

#: ``Operator.blacklist_remove``: what names an entry.
BLACKLIST_KEY: tuple[Option, ...] = (_NUMBER, _SCOPE)
#: ``Operator.blacklist_add``.
BLACKLIST_ADD: tuple[Option, ...] = (*BLACKLIST_KEY, Option("note", help="Why (for operators)."))
#: ``Operator.blacklist``.
BLACKLIST_LIST: tuple[Option, ...] = (Option("customer", help="Only this customer's own entries."),)


# -- country policies -------------------------------------------------------------------------

#: ``Operator.set_policy`` (the calling code named where): each None keeps its value.
POLICY_SET: tuple[Option, ...] = (
    Option("requires_template", "boolean", help="Require an approved template.", cli="template"),
    Option("requires_signature", "boolean", help="Require an approved signature.", cli="signature"),
    Option(
        "requires_registered_sender",
        "boolean",
        help="Require an approved sender ID.",
        cli="registered_sender",
    ),
    Option(
        "sender_format",
        help="Sender IDs accepted: any, numeric or alpha.",
        choices=("any", "numeric", "alpha"),
    ),
    Option("note", help='Free text ("none" clears).'),
    Option(
        "opt_out_keywords",
        help="First words that put the sender on the customer's opt-out list, comma-separated"
        ' (replace STOP,UNSUBSCRIBE,退订,TD for this destination; "none": those defaults).',
    ),
    Option(
        "opt_in_keywords",
        help='First words that take the sender off it again (replace START; "none": defaults).',
    ),
)


# -- opt-out lists ----------------------------------------------------------------------------

#: The customer whose list (a positional argument of the CLI, a path segment of the admin API).
OPT_OUT_CUSTOMER = Option("customer", required=True, argument=True, help="Customer name.")
#: ``Operator.opt_out_add`` / ``opt_out_remove`` (the customer named where).
OPT_OUT_NUMBER: tuple[Option, ...] = (
    Option(
        "number",
        required=True,
        argument=True,
        help="Calling code + number, digits, e.g. 85261234567.",
    ),
)


# -- registrations (signatures, templates, sender IDs) ----------------------------------------

REGISTRATION_CUSTOMER = Option("customer", required=True, argument=True, help="Customer name.")
#: The registered text; each CLI group names it after its kind (signature, template, sender).
REGISTRATION_TEXT = Option(
    "text",
    required=True,
    argument=True,
    help="The signature, template (with {slots}) or sender ID.",
)
#: Templates and senders only: signatures are valid for every destination.
REGISTRATION_COUNTRY = Option(
    "country_code",
    help="Only for this calling code (default: every destination).",
    cli="country",
)
#: ``Operator.add_signature`` / ``add_template`` / ``add_sender``.
REGISTRATION_ADD: tuple[Option, ...] = (
    REGISTRATION_CUSTOMER,
    REGISTRATION_TEXT,
    REGISTRATION_COUNTRY,
)
#: ``Operator.decide`` (the registration named where).
DECISION: tuple[Option, ...] = (Option("note", help="Recorded with the decision."),)
#: ``Operator.registrations``.
REGISTRATION_LIST: tuple[Option, ...] = (
    Option("customer", help="Only this customer's."),
    Option(
        "status",
        help="pending, approved or rejected.",
        choices=("pending", "approved", "rejected"),
    ),
)


# -- SMPP accounts ----------------------------------------------------------------------------

#: The account a ``cloudsms smpp-account`` command or an admin operation acts on.
SMPP_SYSTEM_ID = Option(
    "system_id", required=True, argument=True, help="SMPP system_id (1-15 characters)."
)
SMPP_PASSWORD = Option(
    "password", required=True, secret=True, help="SMPP password (1-8 characters, stored hashed)."
)
#: ``Operator.add_smpp_account`` (the customer named where).
SMPP_ACCOUNT_ADD: tuple[Option, ...] = (
    SMPP_SYSTEM_ID,
    SMPP_PASSWORD,
    Option("route", required=True, help="ROUTE_ID the account's messages take."),
    Option("binds", help="Bind modes allowed, comma-separated: tx, rx, trx.", default="tx,rx,trx"),
    Option(
        "max_sessions",
        "integer",
        help="Sessions bound at once, all modes together.",
        default="4",
        low=1,
        high=1000,
    ),
    Option(
        "throughput",
        "integer",
        help="Segments per second over all sessions (0: no limit).",
        default="100",
        low=0,
        high=100_000,
    ),
    Option(
        "intermediate_receipts",
        "boolean",
        help="Also send deliver_sm receipts for intermediate states (ENROUTE, ACCEPTED).",
    ),
    Option(
        "mo",
        "boolean",
        help="The customer's inbound messages (MO) go out as deliver_sm on this account's"
        " rx / trx sessions instead of SMS_PUSH_MO (default: on when it may bind rx or trx).",
    ),
)
#: ``Operator.set_smpp_account_mo``: on or off.
SMPP_MO_SWITCH = Option(
    "switch",
    required=True,
    argument=True,
    metavar="on|off",
    choices=("on", "off"),
    help="on: MOs stored from now on go out on the account's sessions; off: over HTTP.",
)


# -- inbound messages (MO) --------------------------------------------------------------------

#: The inbound number an action acts on: digits of a long number (international form) or a
#: short code, and the keyword on a shared short code ("" / left out: every message).
INBOUND_NUMBER_KEY: tuple[Option, ...] = (
    Option(
        "number",
        required=True,
        argument=True,
        help="Long number (international digits, + allowed) or short code.",
    ),
    Option("keyword", help="Only messages whose first word is this (shared short codes)."),
)
#: ``Operator.add_inbound_number``.
INBOUND_NUMBER_ADD: tuple[Option, ...] = (
    *INBOUND_NUMBER_KEY,
    Option("customer", required=True, help="Customer the messages go to."),
)
#: ``Operator.set_mo_url`` (the customer named where).
MO_URL = Option(
    "mo_url",
    required=True,
    argument=True,
    help='http(s) URL for inbound messages (SMS_PUSH_MO); "none": the report callback URL.',
    metavar="URL",
)
#: ``Operator.inbound_messages``.
INBOUND_LIST: tuple[Option, ...] = (
    Option("customer", help="Only this customer's inbound messages."),
    Option("unrouted", "boolean", help="Only the messages no customer got."),
    Option("limit", "integer", help="How many, newest first.", default="100", low=1, high=1000),
)
#: The built-in simulator's inbound message (``cloudsms simulator mo``, ``simulator.mo``).
SIMULATOR_MO: tuple[Option, ...] = (
    Option("source", required=True, help="The handset's number, e.g. +85261234567.", cli="from"),
    Option("destination", required=True, help="The number it is sent to.", cli="to"),
    Option("text", required=True, help="The message (GSM 03.38, else UCS-2; long: in parts)."),
)
