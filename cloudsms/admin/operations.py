"""Every admin operation, as one table: ``OPERATIONS`` (see ``cloudsms.admin.api``).

Each ``run`` function is a few lines over the service layer (``Operator``, ``CarrierOperator``)
that the CLI uses, so the admin API, the console and the CLI accept and refuse the same input
with the same messages. The parameters an operation shares with a CLI command are declared once,
in ``cloudsms.services.options``; the answers' JSON shapes are in ``cloudsms.admin.shapes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Literal

from cloudsms.admin.api import Call, Operation, Param
from cloudsms.admin.context import fmt_money, parse_time
from cloudsms.admin.shapes import (
    STATES,
    as_dicts,
    connector_json,
    customer_json,
    lifecycle_json,
    message_json,
    price_list_json,
    registration_json,
)
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import ConfigError, NotFound
from cloudsms.services import validation as v
from cloudsms.services.options import (
    BLACKLIST_ADD,
    BLACKLIST_KEY,
    BLACKLIST_LIST,
    CONNECTOR_ENABLED,
    CONNECTOR_NAME,
    CUSTOMER_CREATE,
    CUSTOMER_NAME,
    CUSTOMER_SETTINGS,
    CUSTOMER_STATE,
    DECISION,
    INBOUND_LIST,
    INBOUND_NUMBER_ADD,
    INBOUND_NUMBER_KEY,
    MO_URL,
    MONEY_CHANGE,
    NETWORK,
    OPT_OUT_NUMBER,
    POLICY_SET,
    PRICE,
    PRICE_LIST_CREATE,
    REGISTRATION_ADD,
    REGISTRATION_LIST,
    ROUTE_CREATE,
    ROUTE_GRANT,
    RULE_ADD,
    RULE_KEY,
    SIMULATOR_MO,
    SMPP_ACCOUNT_ADD,
    SMPP_PASSWORD,
    Option,
    connector_options,
)
from cloudsms.storage.admin_ops import SERIES_KEYS, MessageQuery
from cloudsms.storage.registration_ops import RegistrationKind

KINDS: dict[str, RegistrationKind] = {
    "signatures": "signature",
    "templates": "template",
    "senders": "sender",
}

# -- customers --------------------------------------------------------------------------------


def _customers(call: Call) -> Any:
    return [customer_json(c) for c in call.operator.customers()]


def _customer(call: Call) -> Any:
    return customer_json(call.operator.customer(call.path["name"]))


def _create_customer(call: Call) -> Any:
    a = dict(call.args)
    created = call.operator.create_customer(a.pop("name"), **a)  # CUSTOMER_CREATE
    return customer_json(created, with_key=True)


def _update_customer(call: Call) -> Any:
    name, a, op = call.path["name"], call.args, call.operator
    if not a:
        raise ConfigError("nothing to change: give at least one setting")
    # Check everything before changing anything (update_settings does the same for its part).
    if a.get("callback_url") not in (None, "", "none", "-"):
        v.check_callback_url(a["callback_url"])
    if "credit_limit" in a:
        v.parse_money(a["credit_limit"], "credit limit")
    op.customer(name)
    settings = {o.name: a[o.name] for o in CUSTOMER_SETTINGS if o.name in a}
    if "max_backlog" in settings:
        settings["max_backlog"] = str(settings["max_backlog"])  # the service takes text
    changed = op.update_settings(name, **settings)
    if "callback_url" in a:
        op.set_callback(name, a["callback_url"])
        changed.append("callback url")
    if "credit_limit" in a:
        op.set_credit_limit(name, a["credit_limit"])
        changed.append("credit limit")
    if "enabled" in a:
        op.set_enabled(name, a["enabled"])
        changed.append("enabled")
    return {"changed": changed, "customer": customer_json(op.customer(name))}


def _rotate_key(call: Call) -> Any:
    return {"auth_key": call.operator.rotate_key(call.path["name"])}


def _money(call: Call, adjust: bool) -> Any:
    name, op = call.path["name"], call.operator
    change = op.adjust_balance if adjust else op.top_up
    balance = change(name, call.args["amount"], call.args.get("note"))
    currency = op.customer(name).currency
    return {"balance": fmt_money(balance), "balance_micros": balance, "currency": currency}


def _ledger(call: Call) -> Any:
    entries = call.store.ledger(call.path["name"], limit=call.arg("limit", 100))
    return [
        {**dataclasses.asdict(e), "delta": fmt_money(e.delta_micros)}
        | {"balance_after": fmt_money(e.balance_after_micros)}
        for e in entries
    ]


def _add_network(call: Call) -> Any:
    return {"cidr": call.operator.add_network(call.path["name"], call.args["cidr"])}


def _remove_network(call: Call) -> Any:
    return {"cidr": call.operator.remove_network(call.path["name"], call.args["cidr"])}


# -- price lists ------------------------------------------------------------------------------


def _price_lists(call: Call) -> Any:
    return [price_list_json(p) for p in call.operator.price_lists()]


def _price_list(call: Call) -> Any:
    return price_list_json(call.operator.price_list(call.path["name"]))


def _create_price_list(call: Call) -> Any:
    return price_list_json(
        call.operator.create_price_list(call.args["name"], call.args["currency"])
    )


def _set_price(call: Call) -> Any:
    prefix, micros = call.operator.set_price(
        call.path["name"], call.path["prefix"], call.args["amount"]
    )
    return {"prefix": prefix, "amount": fmt_money(micros), "amount_micros": micros}


def _remove_price(call: Call) -> Any:
    call.operator.remove_price(call.path["name"], call.path["prefix"])
    return {"removed": call.path["prefix"]}


# -- routes and rules -------------------------------------------------------------------------


def _routes(call: Call) -> Any:
    enabled = call.store.route_states()
    rules = call.carrier.rules()
    return [
        {
            **dataclasses.asdict(r),
            "enabled": enabled.get(r.name, True),
            "rules": [dataclasses.asdict(x) for x in rules if x.route == r.name],
        }
        for r in call.operator.routes()
    ]


def _create_route(call: Call) -> Any:
    a = call.args
    route = call.operator.create_route(
        a["name"], latin1=call.arg("latin1", False), description=a.get("description")
    )
    return dataclasses.asdict(route)


def _update_route(call: Call) -> Any:
    if "enabled" not in call.args:
        raise ConfigError("nothing to change: give enabled")
    call.store.set_route_enabled(call.path["name"], call.args["enabled"])
    return {"name": call.path["name"], "enabled": call.args["enabled"]}


def _grant(call: Call) -> Any:
    call.operator.grant_route(call.path["name"], call.args["customer"])
    return {"route": call.path["name"], "customer": call.args["customer"]}


def _revoke(call: Call) -> Any:
    call.operator.revoke_route(call.path["name"], call.path["customer"])
    return {"route": call.path["name"], "customer": call.path["customer"]}


def _rules(call: Call) -> Any:
    return as_dicts(call.carrier.rules(call.path["name"]))


def _add_rule(call: Call) -> Any:
    a = dict(call.args)  # RULE_ADD: what is left out takes the service's default
    rule = call.carrier.add_rule(call.path["name"], a.pop("connector"), **a)
    return dataclasses.asdict(rule)


def _remove_rule(call: Call) -> Any:
    a = call.args
    call.carrier.remove_rule(call.path["name"], a["connector"], prefix=a.get("prefix"))
    return {"removed": True}


# -- connectors -------------------------------------------------------------------------------


def _connectors(call: Call) -> Any:
    return [connector_json(c) for c in call.carrier.connectors()]


def _connector(call: Call) -> Any:
    return connector_json(call.carrier.connector(call.path["name"]))


def _create_connector(call: Call) -> Any:
    a = dict(call.args)
    created = call.carrier.add_connector(
        a.pop("name"),
        host=a.pop("host"),
        port=a.pop("port"),
        system_id=a.pop("system_id"),
        password=a.pop("password"),
        **a,
    )
    return connector_json(created)


def _update_connector(call: Call) -> Any:
    a = dict(call.args)
    name = call.path["name"]
    enabled = a.pop("enabled", None)
    changed: list[str] = []
    if a:
        changed = call.carrier.set_connector(name, **a)
    elif enabled is None:
        raise ConfigError("nothing to change: give at least one setting")
    if enabled is not None:
        call.carrier.set_enabled(a.get("rename") or name, enabled)
        changed.append("enabled")
    current = call.carrier.connector(a.get("rename") or name)
    return {"changed": changed, "connector": connector_json(current)}


def _remove_connector(call: Call) -> Any:
    rules = call.carrier.remove_connector(call.path["name"], force=call.arg("force", False))
    return {"removed": call.path["name"], "rules_removed": rules}


def _statuses(call: Call) -> Any:
    return as_dicts(call.carrier.statuses())


# -- blacklist, policies ----------------------------------------------------------------------


def _blacklist(call: Call) -> Any:
    return as_dicts(call.operator.blacklist(call.args.get("customer")))


def _blacklist_add(call: Call) -> Any:
    a = call.args
    number = call.operator.blacklist_add(a["number"], a.get("customer"), a.get("note"))
    return {"number": number, "customer": a.get("customer")}


def _blacklist_remove(call: Call) -> Any:
    a = call.args
    return {"number": call.operator.blacklist_remove(a["number"], a.get("customer"))}


# -- inbound messages (MO) --------------------------------------------------------------------


def _inbound_numbers(call: Call) -> Any:
    return as_dicts(call.operator.inbound_numbers(call.args.get("customer")))


def _add_inbound_number(call: Call) -> Any:
    a = call.args
    added = call.operator.add_inbound_number(
        a["number"], customer=a["customer"], keyword=a.get("keyword")
    )
    return dataclasses.asdict(added)


def _remove_inbound_number(call: Call) -> Any:
    call.operator.remove_inbound_number(call.args["number"], call.args.get("keyword"))
    return {"removed": call.args["number"], "keyword": (call.args.get("keyword") or "").upper()}


def _set_mo_url(call: Call) -> Any:
    name = call.path["name"]
    call.operator.set_mo_url(name, call.args["mo_url"])
    return {"customer": name, "mo_url": call.operator.mo_url(name)}


def _inbound_messages(call: Call) -> Any:
    a = call.args
    return as_dicts(
        call.operator.inbound_messages(
            a.get("customer"), unrouted=bool(a.get("unrouted")), limit=call.arg("limit", 100)
        )
    )


def _simulator_mo(call: Call) -> Any:
    simulator = call.ctx.simulator
    if simulator is None:
        raise ConfigError("no built-in SMSC simulator runs in this process (simulator_port)")
    a = call.args
    parts = simulator.send_mo(a["source"], a["destination"], a["text"])
    return {"parts": parts, "source": a["source"], "destination": a["destination"]}


# -- opt-out lists ----------------------------------------------------------------------------


def _opt_outs(call: Call) -> Any:
    return as_dicts(call.operator.opt_outs(call.path["name"]))


def _opt_out_add(call: Call) -> Any:
    name = call.path["name"]
    return {"customer": name, "number": call.operator.opt_out_add(name, call.args["number"])}


def _opt_out_remove(call: Call) -> Any:
    name = call.path["name"]
    return {"customer": name, "number": call.operator.opt_out_remove(name, call.args["number"])}


# -- SMPP accounts ----------------------------------------------------------------------------


def _smpp_json(account: Any) -> dict[str, Any]:
    """An SMPP account without its password digest."""
    out = dataclasses.asdict(account)
    out.pop("password_hash")
    out["binds"] = sorted(account.binds)
    return out


def _smpp_accounts(call: Call) -> Any:
    return [_smpp_json(a) for a in call.operator.smpp_accounts(call.args.get("customer"))]


def _add_smpp_account(call: Call) -> Any:
    a = {k: v for k, v in call.args.items() if v is not None}
    system_id = a.pop("system_id")
    return _smpp_json(call.operator.add_smpp_account(call.path["name"], system_id, **a))


def _update_smpp_account(call: Call) -> Any:
    system_id = call.path["system_id"]
    if call.args.get("password") is not None:
        call.operator.set_smpp_password(system_id, password=call.args["password"])
    if call.args.get("enabled") is not None:
        call.operator.set_smpp_account_enabled(system_id, call.args["enabled"])
    if call.args.get("mo") is not None:
        call.operator.set_smpp_account_mo(system_id, call.args["mo"])
    return {"system_id": system_id}


def _smpp_sessions(call: Call) -> Any:
    live = call.ctx.smpp_sessions
    return [] if live is None else as_dicts(live.list_sessions())


def _disconnect_smpp_session(call: Call) -> Any:
    live = call.ctx.smpp_sessions
    session_id = v.check_range(call.path["id"], "session id", 1, 1 << 62)
    if live is None or not live.disconnect(session_id):
        raise NotFound(f"no SMPP session {session_id} in this process")
    return {"disconnected": session_id}


def _remove_smpp_account(call: Call) -> Any:
    call.operator.remove_smpp_account(call.path["system_id"])
    return {"removed": call.path["system_id"]}


def _policies(call: Call) -> Any:
    return as_dicts(call.operator.policies())


def _set_policy(call: Call) -> Any:
    policy = call.operator.set_policy(call.path["country_code"], **call.args)  # POLICY_SET
    return dataclasses.asdict(policy)


def _delete_policy(call: Call) -> Any:
    call.operator.delete_policy(call.path["country_code"])
    return {"removed": call.path["country_code"]}


# -- registrations ----------------------------------------------------------------------------


def _kind(call: Call) -> RegistrationKind:
    kind = KINDS.get(call.path["kind"])
    if kind is None:
        raise ConfigError(f"{call.path['kind']!r}: one of {', '.join(KINDS)}")
    return kind


def _registrations(call: Call) -> Any:
    found = call.operator.registrations(
        _kind(call), call.args.get("customer"), call.args.get("status")
    )
    return [registration_json(r) for r in found]


def _register(call: Call) -> Any:
    kind, a, op = _kind(call), call.args, call.operator
    if kind == "signature":
        if a.get("country_code") is not None:
            raise ConfigError("signatures are valid for every destination: no country_code")
        created = op.add_signature(a["customer"], a["text"])
    elif kind == "template":
        created = op.add_template(a["customer"], a["text"], a.get("country_code"))
    else:
        created = op.add_sender(a["customer"], a["text"], a.get("country_code"))
    return registration_json(created)


def _decide(approve: bool) -> Any:
    def run(call: Call) -> Any:
        reg_id = v.check_backlog(call.path["id"])  # a whole number ≥ 0
        decided = call.operator.decide(_kind(call), reg_id, approve, call.args.get("note"))
        return registration_json(decided)

    return run


# -- messages, statistics, audit --------------------------------------------------------------


def message_query(call: Call, customer_id: int | None = None) -> MessageQuery:
    a = call.args
    if customer_id is None and a.get("customer"):
        customer_id = call.operator.customer(a["customer"]).id
    state = a.get("state")
    return MessageQuery(
        sms_uid=a.get("sms_uid") or None,
        number=a.get("number") or None,
        customer_id=customer_id,
        state=MessageState(state) if state else None,
        since_ms=parse_time(a.get("since"), "since"),
        until_ms=parse_time(a.get("until"), "until"),
        before=a.get("before") or None,
        limit=call.arg("limit", 50),
    )


def _messages(call: Call) -> Any:
    return [message_json(m) for m in call.store.search_messages(message_query(call))]


def _message(call: Call) -> Any:
    return lifecycle_json(call.store.message_lifecycle(call.path["sms_uid"]))


def _summary(call: Call) -> Any:
    s = call.store.summary(window_ms=call.arg("window_s", 60) * 1000)
    return {
        **dataclasses.asdict(s),
        "throughput": round(s.throughput, 3),
        "delivery_rate": s.delivery_rate,
        "connectors": as_dicts(call.carrier.statuses()),
    }


def _series(call: Call) -> Any:
    now = call.store.now_ms()
    since = parse_time(call.args.get("since"), "since") or now - 3_600_000
    customer = call.args.get("customer")
    series = call.store.message_series(
        call.args.get("by", "state"),
        since_ms=since,
        until_ms=parse_time(call.args.get("until"), "until") or now,
        bucket_ms=call.arg("bucket_s", 60) * 1000,
        customer_id=None if not customer else call.operator.customer(customer).id,
    )
    return dataclasses.asdict(series)


def _audit(call: Call) -> Any:
    a = call.args
    entries = call.store.list_audit(
        limit=call.arg("limit", 100),
        before_id=a.get("before"),
        actor=a.get("actor"),
        target=a.get("target"),
    )
    return as_dicts(entries)


def _whoami(call: Call) -> Any:
    p = call.principal
    return {"name": p.name, "role": p.role, "can_change": p.can_change}


# -- the table --------------------------------------------------------------------------------


def _q(name: str, kind: Any = "string", help: str = "", **kw: Any) -> Param:
    return Param(name, kind, help=help, where="query", **kw)


def _params(
    options: Iterable[Option], where: Literal["body", "query"] = "body"
) -> tuple[Param, ...]:
    """Parameters from the options the CLI shares (``cloudsms.services.options``)."""
    return tuple(
        Param(o.name, o.kind, o.required, o.description, where=where, enum=o.choices)
        for o in options
    )


_S = Param
_TIME_HELP = "Epoch ms or a date like 2026-01-01 12:00 (UTC+8)."
_CUSTOMER_SETTINGS = _params((*CUSTOMER_STATE, *CUSTOMER_SETTINGS))

OPERATIONS: list[Operation] = [
    Operation("whoami", "GET", "/whoami", "The calling token's name and role.", _whoami,
              tag="auth"),
    # customers
    Operation("customers.list", "GET", "/customers", "All customers.", _customers, tag="customers"),
    Operation(
        "customers.create", "POST", "/customers",
        "Create a customer; the answer holds its new AUTH_KEY (shown once).",
        _create_customer,
        _params((CUSTOMER_NAME, *CUSTOMER_CREATE)),
        tag="customers", creates=True,
    ),
    Operation("customers.get", "GET", "/customers/{name}", "One customer.", _customer,
              tag="customers"),
    Operation("customers.update", "PATCH", "/customers/{name}",
              "Change settings (all checked before any is written).", _update_customer,
              _CUSTOMER_SETTINGS, tag="customers"),
    Operation("customers.rotate_key", "POST", "/customers/{name}/rotate-key",
              "New AUTH_KEY (shown once); the old one stops within a second.", _rotate_key,
              tag="customers"),
    Operation("customers.top_up", "POST", "/customers/{name}/top-up",
              "Credit a positive amount (ledgered with the token's name).",
              lambda c: _money(c, adjust=False), _params(MONEY_CHANGE), tag="money"),
    Operation("customers.adjust", "POST", "/customers/{name}/adjust",
              "A correction, may be negative (ledgered).", lambda c: _money(c, adjust=True),
              _params(MONEY_CHANGE), tag="money"),
    Operation("customers.ledger", "GET", "/customers/{name}/ledger",
              "Balance changes, newest first.", _ledger, (_q("limit", "integer"),), tag="money"),
    Operation("customers.whitelist_add", "POST", "/customers/{name}/networks",
              "Allow a source IP or CIDR for the customer's key.", _add_network,
              _params(NETWORK), tag="customers"),
    Operation("customers.whitelist_remove", "DELETE", "/customers/{name}/networks",
              "Remove a source IP or CIDR.", _remove_network,
              _params(NETWORK, "query"), tag="customers"),
    # price lists
    Operation("prices.list", "GET", "/price-lists", "All price lists.", _price_lists,
              tag="prices"),
    Operation("prices.create", "POST", "/price-lists", "Create a price list.", _create_price_list,
              _params(PRICE_LIST_CREATE), tag="prices", creates=True),
    Operation("prices.get", "GET", "/price-lists/{name}", "One price list.", _price_list,
              tag="prices"),
    Operation("prices.set", "PUT", "/price-lists/{name}/prices/{prefix}",
              "Price per segment for a destination prefix (longest match wins).", _set_price,
              _params(PRICE), tag="prices"),
    Operation("prices.remove", "DELETE", "/price-lists/{name}/prices/{prefix}",
              "Remove a prefix's price.", _remove_price, tag="prices"),
    # routes
    Operation("routes.list", "GET", "/routes", "Routes with grants and rules.", _routes,
              tag="routes"),
    Operation("routes.create", "POST", "/routes", "Create a route (a ROUTE_ID).", _create_route,
              _params(ROUTE_CREATE), tag="routes", creates=True),
    Operation("routes.update", "PATCH", "/routes/{name}", "Suspend (enabled=false) or resume.",
              _update_route, (_S("enabled", "boolean"),), tag="routes"),
    Operation("routes.grant", "POST", "/routes/{name}/grants", "Grant the route to a customer.",
              _grant, _params(ROUTE_GRANT), tag="routes"),
    Operation("routes.revoke", "DELETE", "/routes/{name}/grants/{customer}",
              "Revoke a customer's grant.", _revoke, tag="routes"),
    Operation("routes.rules", "GET", "/routes/{name}/rules", "The route's rules.", _rules,
              tag="routes"),
    Operation("routes.rule_add", "POST", "/routes/{name}/rules",
              "Send destinations starting with prefix (none: all) via a connector.", _add_rule,
              _params(RULE_ADD), tag="routes"),
    Operation("routes.rule_remove", "DELETE", "/routes/{name}/rules", "Remove a rule.",
              _remove_rule, _params(RULE_KEY, "query"), tag="routes"),
    # connectors
    Operation("connectors.list", "GET", "/connectors", "All connectors (passwords masked).",
              _connectors, tag="connectors"),
    Operation("connectors.status", "GET", "/connector-status",
              "Live state of every connector.", _statuses, tag="connectors"),
    Operation("connectors.create", "POST", "/connectors", "Add an SMPP connector.",
              _create_connector,
              _params((CONNECTOR_NAME, *connector_options(create=True))),
              tag="connectors", creates=True),
    Operation("connectors.get", "GET", "/connectors/{name}", "One connector.", _connector,
              tag="connectors"),
    Operation("connectors.update", "PATCH", "/connectors/{name}",
              "Change settings (all checked first), rename, enable or disable.",
              _update_connector,
              (_S("rename", help="New connector name."),
               *_params((*connector_options(create=False), CONNECTOR_ENABLED))),
              tag="connectors"),
    Operation("connectors.remove", "DELETE", "/connectors/{name}",
              "Remove a connector (force: with its route rules).", _remove_connector,
              (_q("force", "boolean"),), tag="connectors"),
    # blacklist
    Operation("blacklist.list", "GET", "/blacklist", "Blacklisted numbers.", _blacklist,
              _params(BLACKLIST_LIST, "query"), tag="blacklist"),
    Operation("blacklist.add", "POST", "/blacklist",
              "Blacklist a number (platform-wide without customer).", _blacklist_add,
              _params(BLACKLIST_ADD), tag="blacklist", creates=True),
    Operation("blacklist.remove", "DELETE", "/blacklist", "Remove a blacklisted number.",
              _blacklist_remove, _params(BLACKLIST_KEY, "query"), tag="blacklist"),
    # inbound messages (MO)
    Operation("inbound_numbers.list", "GET", "/inbound-numbers",
              "Long numbers and short codes assigned to customers.", _inbound_numbers,
              (_q("customer", help="Only this customer's numbers."),), tag="inbound"),
    Operation("inbound_numbers.create", "POST", "/inbound-numbers",
              "Assign a number (and optionally a keyword on it) to a customer.",
              _add_inbound_number, _params(INBOUND_NUMBER_ADD), tag="inbound", creates=True),
    Operation("inbound_numbers.remove", "DELETE", "/inbound-numbers",
              "Take a number (or one keyword on it) back.", _remove_inbound_number,
              _params(INBOUND_NUMBER_KEY, "query"), tag="inbound"),
    Operation("customers.set_mo_url", "PUT", "/customers/{name}/mo-url",
              "Where the customer's inbound messages are pushed (SMS_PUSH_MO).", _set_mo_url,
              _params((MO_URL,)), tag="inbound"),
    Operation("inbound_messages.list", "GET", "/inbound-messages",
              "The latest inbound messages, newest first, with their push state.",
              _inbound_messages, _params(INBOUND_LIST, "query"), tag="inbound"),
    Operation("simulator.mo", "POST", "/simulator/mo",
              "Have the built-in SMSC simulator send an inbound message to the platform.",
              _simulator_mo, _params(SIMULATOR_MO), tag="inbound"),
    # opt-out lists
    Operation("opt_outs.list", "GET", "/customers/{name}/opt-outs",
              "The customer's opt-out list: numbers that sent STOP (or were added), answered"
              " Intercept.", _opt_outs, tag="opt-outs"),
    Operation("opt_outs.add", "POST", "/customers/{name}/opt-outs",
              "Put a number on the customer's opt-out list.", _opt_out_add,
              _params(OPT_OUT_NUMBER), tag="opt-outs", creates=True),
    Operation("opt_outs.remove", "DELETE", "/customers/{name}/opt-outs",
              "Take a number off the customer's opt-out list.", _opt_out_remove,
              _params(OPT_OUT_NUMBER, "query"), tag="opt-outs"),
    # SMPP accounts
    Operation("smpp_accounts.list", "GET", "/smpp-accounts", "Customers' SMPP accounts.",
              _smpp_accounts, (_q("customer", help="Only this customer's accounts."),),
              tag="smpp"),
    Operation("smpp_accounts.create", "POST", "/customers/{name}/smpp-accounts",
              "Give the customer an SMPP account (password stored hashed).", _add_smpp_account,
              _params(SMPP_ACCOUNT_ADD), tag="smpp", creates=True),
    Operation("smpp_accounts.update", "PATCH", "/smpp-accounts/{system_id}",
              "New password, enable / disable binds, MOs on its sessions or not.",
              _update_smpp_account,
              (*_params((dataclasses.replace(SMPP_PASSWORD, required=False),)),
               _S("enabled", "boolean", help="false: binds are refused."),
               _S("mo", "boolean", help="true: the customer's MOs stored from now on go out as"
                  " deliver_sm on this account's sessions; false: over HTTP.")), tag="smpp"),
    Operation("smpp_accounts.remove", "DELETE", "/smpp-accounts/{system_id}",
              "Remove an SMPP account.", _remove_smpp_account, tag="smpp"),
    Operation("smpp_sessions.list", "GET", "/smpp-sessions",
              "Live SMPP sessions of this process: bind, peer, window in use, counts, rate.",
              _smpp_sessions, tag="smpp"),
    Operation("smpp_sessions.disconnect", "DELETE", "/smpp-sessions/{id}",
              "Close a live SMPP session (the ESME may bind again).", _disconnect_smpp_session,
              tag="smpp"),
    # policies
    Operation("policies.list", "GET", "/policies", "Country registration policies.", _policies,
              tag="policies"),
    Operation("policies.set", "PUT", "/policies/{country_code}",
              "Create or change a destination's rules (fields left out keep their value).",
              _set_policy, _params(POLICY_SET), tag="policies"),
    Operation("policies.delete", "DELETE", "/policies/{country_code}", "Remove a policy.",
              _delete_policy, tag="policies"),
    # registrations
    Operation("registrations.list", "GET", "/registrations/{kind}",
              "Signatures, templates or senders (kind), by customer and status.", _registrations,
              _params(REGISTRATION_LIST, "query"), tag="registrations"),
    Operation("registrations.add", "POST", "/registrations/{kind}",
              "Register a signature, template (with {slots}) or sender ID (pending).", _register,
              _params(REGISTRATION_ADD), tag="registrations", creates=True),
    Operation("registrations.approve", "POST", "/registrations/{kind}/{id}/approve",
              "Approve: the accept path honours it within a second.", _decide(True),
              _params(DECISION), tag="registrations"),
    Operation("registrations.reject", "POST", "/registrations/{kind}/{id}/reject",
              "Reject (also withdraws an approved one).", _decide(False), _params(DECISION),
              tag="registrations"),
    # messages and statistics
    Operation("messages.search", "GET", "/messages",
              "Search messages, newest first (page with before=<last SMS_UID>).", _messages,
              (_q("sms_uid"), _q("number", help="DEST_MSISDN, or calling code + number."),
               _q("customer"), _q("state", enum=STATES), _q("since", help=_TIME_HELP),
               _q("until", help=_TIME_HELP), _q("before"), _q("limit", "integer")),
              tag="messages"),
    Operation("messages.get", "GET", "/messages/{sms_uid}",
              "A message's whole lifecycle: parts, receipts, reports, push attempts.", _message,
              tag="messages"),
    Operation("stats.summary", "GET", "/stats/summary",
              "Throughput, delivery rate, backlog, connector states.", _summary,
              (_q("window_s", "integer"),), tag="stats"),
    Operation("stats.series", "GET", "/stats/series",
              "Messages per time bucket by state, country, connector or customer.", _series,
              (_q("by", enum=SERIES_KEYS), _q("since", help=_TIME_HELP),
               _q("until", help=_TIME_HELP), _q("bucket_s", "integer"), _q("customer")),
              tag="stats"),
    Operation("audit.list", "GET", "/audit", "Who changed what, newest first.", _audit,
              (_q("actor"), _q("target"), _q("before", "integer"), _q("limit", "integer")),
              tag="audit"),
]  # fmt: skip

BY_ID: dict[str, Operation] = {op.id: op for op in OPERATIONS}
