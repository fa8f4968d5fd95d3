"""Operation options the admin API and the CLI share: declared here once.

An :class:`Option` names one input of an operator action (as the service takes it), its kind,
its help text and, where the CLI spells it otherwise for history's sake, the CLI name. The
admin operation table (``cloudsms.admin.operations``) turns them into ``Param`` rows and the
CLI (``cloudsms.cli._common.with_options``) into Typer options, so both front ends take the
same inputs with the same help; the service validates them, so both refuse the same mistakes.

Connector options are derived from ``cloudsms.domain.routing.ConnectorSettings``, where the
settings and their defaults are declared.
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
    #: The value an action takes when the option is left out, as the CLI's help shows it ("":
    #: none worth showing).
    default: str = ""


# -- customers --------------------------------------------------------------------------------

_CALLBACK = Option(
    "callback_url", help='http(s) URL for delivery reports; "none" removes it.', cli="callback"
)
_CREDIT_LIMIT = Option("credit_limit", "money", help="How far below 0 the balance may go.")
_SENDER = 'Sender ID for packets without ORIGINAL_ADDR; "none" clears.'
_PRICE_LIST = Option("price_list", help='Price list (same currency); "none" removes it.')

#: ``Operator.create_customer``'s options (the name aside).
CUSTOMER_CREATE: tuple[Option, ...] = (
    Option("currency", required=True, help="Billing currency (CNY HKD TWD EUR USD …)."),
    _PRICE_LIST,
    _CALLBACK,
    dataclasses.replace(_CREDIT_LIMIT, default="0"),
    Option("balance", "money", help="Opening balance (ledgered).", default="0"),
    Option("default_sender", help=_SENDER, cli="sender"),
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


# -- connectors -------------------------------------------------------------------------------


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
