"""The operator service: what the CLI, the admin REST API and the web console call.

Each method takes raw operator input (strings as typed), validates it with
``cloudsms.services.validation`` (``ConfigError`` with a readable message for bad input), and
calls one named store operation. The store then reports ``NotFound`` / ``Conflict``. Keeping the
rules here, not in a front end, means every front end refuses the same input the same way.

    >>> op = Operator(store, actor="alice")
    >>> key = op.create_customer("acme", currency="HKD", balance="100").auth_key
    >>> op.top_up("acme", "25.50", note="invoice 1234")
    125500000
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import replace

from cloudsms.domain.inbound import InboundNumber, InboundRecord
from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OptOut
from cloudsms.domain.smpp_accounts import RECEIVING_BINDS, SmppAccount, hash_password
from cloudsms.exceptions import ConfigError
from cloudsms.services import validation as v
from cloudsms.services.opt_outs import OptOutService
from cloudsms.storage.blacklist_ops import BlacklistEntry
from cloudsms.storage.customer_ops import CustomerInfo
from cloudsms.storage.interfaces import OperatorStore
from cloudsms.storage.price_ops import PriceList
from cloudsms.storage.registration_ops import Registration, RegistrationKind
from cloudsms.storage.route_ops import RouteInfo

#: What an operator types to clear an optional setting (callback, sender, price list, …).
NONE_WORDS = frozenset({"none", "-"})


def _optional(value: str | None) -> str | None:
    """None, "", "none" and "-" all mean "no value"."""
    if value is None or value.strip() == "" or value.strip().lower() in NONE_WORDS:
        return None
    return value


class Operator:
    """Operator actions on one store, recorded under ``actor`` where the store keeps an audit."""

    def __init__(self, store: OperatorStore, actor: str = "operator") -> None:
        self.store = store
        self.actor = v.check_name(actor, "actor")

    # -- customers --------------------------------------------------------------------------

    def create_customer(
        self,
        name: str,
        *,
        currency: str,
        price_list: str | None = None,
        callback_url: str | None = None,
        credit_limit: str = "0",
        balance: str = "0",
        default_sender: str | None = None,
    ) -> CustomerInfo:
        """Create a customer with a fresh AUTH_KEY (``.auth_key`` of the result)."""
        key = v.generate_auth_key()
        price_list = _optional(price_list)
        callback_url = _optional(callback_url)
        default_sender = _optional(default_sender)
        return self.store.create_customer(
            v.check_name(name),
            auth_key=key,
            currency=v.check_currency(currency),
            price_list=None if price_list is None else v.check_name(price_list, "price list"),
            callback_url=None if callback_url is None else v.check_callback_url(callback_url),
            credit_limit_micros=v.parse_money(credit_limit, "credit limit"),
            balance_micros=v.parse_money(balance, "opening balance"),
            default_sender=None if default_sender is None else v.check_sender(default_sender),
            actor=self.actor,
        )

    def customer(self, name: str) -> CustomerInfo:
        return self.store.get_customer(name)

    def customers(self) -> list[CustomerInfo]:
        return self.store.list_customers()

    def rotate_key(self, name: str) -> str:
        """Give a customer a new AUTH_KEY; the old one stops working at the next reload."""
        key = v.generate_auth_key()
        self.store.set_auth_key(name, key)
        return key

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.store.set_customer_enabled(name, enabled)

    def set_callback(self, name: str, url: str | None) -> None:
        url = _optional(url)
        self.store.set_callback_url(name, None if url is None else v.check_callback_url(url))

    def set_callback_ca(self, name: str, pem: str | None) -> None:
        """The CA that signs the customer's HTTPS callback certificate (None: system store)."""
        pem = _optional(pem)
        if pem is not None:
            try:
                ssl.create_default_context(cadata=pem)
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"not a PEM CA certificate bundle: {exc}") from exc
        self.store.set_callback_ca(name, pem)

    def set_credit_limit(self, name: str, amount: str) -> None:
        self.store.set_credit_limit(name, v.parse_money(amount, "credit limit"))

    def set_default_sender(self, name: str, sender: str | None) -> None:
        sender = _optional(sender)
        self.store.set_default_sender(name, None if sender is None else v.check_sender(sender))

    def set_max_backlog(self, name: str, limit: str | None) -> None:
        limit = _optional(limit)
        self.store.set_max_backlog(name, None if limit is None else v.check_backlog(limit))

    def set_report_intermediate(self, name: str, enabled: bool) -> None:
        self.store.set_report_intermediate(name, enabled)

    def set_client_cert(self, name: str, fingerprint: str | None) -> None:
        fingerprint = _optional(fingerprint)
        self.store.set_client_cert_sha256(
            name, None if fingerprint is None else v.check_cert_sha256(fingerprint)
        )

    def set_price_list(self, name: str, price_list: str | None) -> None:
        """Assign a price list (its currency must be the customer's); "none" removes it."""
        self.store.set_customer_price_list(name, _optional(price_list))

    def update_settings(
        self,
        name: str,
        *,
        default_sender: str | None = None,
        max_backlog: str | None = None,
        report_intermediate: bool | None = None,
        client_cert_sha256: str | None = None,
        price_list: str | None = None,
    ) -> list[str]:
        """Change the settings given (None: leave as is); returns what changed.

        Everything is validated before anything is written, so a typo in one option leaves the
        customer untouched.
        """
        self.store.get_customer(name)
        steps: list[tuple[str, Callable[[], None]]] = []
        if default_sender is not None:
            sender = _optional(default_sender)
            checked_sender = None if sender is None else v.check_sender(sender)
            steps.append(
                ("default sender", lambda: self.store.set_default_sender(name, checked_sender))
            )
        if max_backlog is not None:
            limit = _optional(max_backlog)
            checked_limit = None if limit is None else v.check_backlog(limit)
            steps.append(("max backlog", lambda: self.store.set_max_backlog(name, checked_limit)))
        if report_intermediate is not None:
            flag = report_intermediate
            steps.append(
                ("report intermediate", lambda: self.store.set_report_intermediate(name, flag))
            )
        if client_cert_sha256 is not None:
            cert = _optional(client_cert_sha256)
            checked_cert = None if cert is None else v.check_cert_sha256(cert)
            steps.append(
                (
                    "client certificate",
                    lambda: self.store.set_client_cert_sha256(name, checked_cert),
                )
            )
        if price_list is not None:
            plist = _optional(price_list)
            steps.append(("price list", lambda: self.store.set_customer_price_list(name, plist)))
        for _, apply in steps:
            apply()
        return [label for label, _ in steps]

    def add_network(self, name: str, cidr: str) -> str:
        network = v.parse_cidr(cidr)
        self.store.add_network(name, network)
        return network

    def remove_network(self, name: str, cidr: str) -> str:
        network = v.parse_cidr(cidr)
        self.store.remove_network(name, network)
        return network

    # -- money ------------------------------------------------------------------------------

    def top_up(self, name: str, amount: str, note: str | None = None) -> int:
        """Credit a positive amount; returns the new balance in micro-units."""
        micros = v.parse_money(amount, "top-up amount")
        if micros == 0:
            raise ConfigError("top-up amount must be more than 0")
        return self.store.change_balance(name, micros, actor=self.actor, note=note)

    def adjust_balance(self, name: str, amount: str, note: str | None = None) -> int:
        """A correction, which may be negative (a refund reversed, a mistaken top-up)."""
        micros = v.parse_money(amount, "adjustment", allow_negative=True)
        if micros == 0:
            raise ConfigError("an adjustment of 0 changes nothing")
        return self.store.change_balance(name, micros, actor=self.actor, note=note)

    # -- price lists ------------------------------------------------------------------------

    def create_price_list(self, name: str, currency: str) -> PriceList:
        return self.store.create_price_list(
            v.check_name(name, "price list"), v.check_currency(currency)
        )

    def set_price(self, price_list: str, prefix: str, amount: str) -> tuple[str, int]:
        """Price per segment for a prefix; returns the normalised prefix and micro-units."""
        digits = v.check_prefix(prefix)
        micros = v.parse_money(amount, "price")
        self.store.set_price(price_list, digits, micros)
        return digits, micros

    def remove_price(self, price_list: str, prefix: str) -> None:
        self.store.remove_price(price_list, v.check_prefix(prefix))

    def price_list(self, name: str) -> PriceList:
        return self.store.get_price_list(name)

    def price_lists(self) -> list[PriceList]:
        return self.store.list_price_lists()

    # -- routes -----------------------------------------------------------------------------

    def create_route(
        self, name: str, *, latin1: bool = False, description: str | None = None
    ) -> RouteInfo:
        return self.store.create_route(
            v.check_route_name(name), latin1=latin1, description=_optional(description)
        )

    def routes(self) -> list[RouteInfo]:
        return self.store.list_routes()

    def grant_route(self, route: str, customer: str) -> None:
        self.store.grant_route(route, customer)

    def revoke_route(self, route: str, customer: str) -> None:
        self.store.revoke_route(route, customer)

    # -- SMPP accounts ----------------------------------------------------------------------

    def add_smpp_account(
        self,
        customer: str,
        system_id: str,
        *,
        password: str,
        route: str,
        binds: str | None = None,
        max_sessions: str | int | None = None,
        throughput: str | int | None = None,
        intermediate_receipts: bool | None = None,
        mo: bool | None = None,
    ) -> SmppAccount:
        """An SMPP account for ``customer`` (its password stored as a salted scrypt digest).

        ``mo`` None: the account takes the customer's inbound messages when it may bind rx or
        trx; asked for on an account that cannot receive, it is refused (it would hold them).
        """
        modes = v.check_binds(binds or "tx,rx,trx")
        if mo and not modes & RECEIVING_BINDS:
            raise ConfigError("mo needs an account that may bind rx or trx (binds: tx only)")
        return self.store.create_smpp_account(
            customer,
            v.check_system_id(system_id),
            password_hash=hash_password(v.check_smpp_password(password)),
            binds=modes,
            max_sessions=v.check_range(
                4 if max_sessions is None else max_sessions, "max sessions", 1, 1000
            ),
            throughput=v.check_range(
                100 if throughput is None else throughput, "throughput", 0, 100_000
            ),
            route=v.check_route_name(route),
            intermediate_receipts=bool(intermediate_receipts),
            mo=mo,
        )

    def smpp_accounts(self, customer: str | None = None) -> list[SmppAccount]:
        return self.store.list_smpp_accounts(customer)

    def set_smpp_password(self, system_id: str, *, password: str) -> None:
        """A new password; sessions bound already stay bound. Keyword-only: the audit masks it."""
        self.store.set_smpp_password(system_id, hash_password(v.check_smpp_password(password)))

    def set_smpp_account_enabled(self, system_id: str, enabled: bool) -> None:
        """A disabled account's binds are refused (ESME_RINVSYSID, as an unknown one) and its
        live sessions closed."""
        self.store.set_smpp_account_enabled(system_id, enabled)

    def set_smpp_account_mo(self, system_id: str, mo: bool) -> None:
        """Whether the customer's inbound messages go out on this account's sessions (those
        stored from now on); refused for an account that cannot bind rx or trx."""
        if mo and not self.store.get_smpp_account(system_id).binds & RECEIVING_BINDS:
            raise ConfigError(
                f"SMPP account {system_id!r} cannot bind rx or trx: it cannot take MOs"
            )
        self.store.set_smpp_account_mo(system_id, mo)

    def remove_smpp_account(self, system_id: str) -> None:
        self.store.remove_smpp_account(system_id)

    # -- inbound messages (MO) --------------------------------------------------------------

    def add_inbound_number(
        self, number: str, *, customer: str, keyword: str | None = None
    ) -> InboundNumber:
        """Inbound messages to ``number`` (starting with ``keyword``, if given) go to
        ``customer``; a keyword on a number held whole by another customer wins over it."""
        digits, word = v.check_inbound_number(number), v.check_keyword(keyword)
        self.store.add_inbound_number(digits, word, customer)
        return next(n for n in self.store.list_inbound_numbers(customer)
                    if (n.number, n.keyword) == (digits, word))  # fmt: skip

    def inbound_numbers(self, customer: str | None = None) -> list[InboundNumber]:
        return self.store.list_inbound_numbers(customer)

    def remove_inbound_number(self, number: str, keyword: str | None = None) -> None:
        self.store.remove_inbound_number(v.check_inbound_number(number), v.check_keyword(keyword))

    def set_mo_url(self, name: str, url: str | None) -> None:
        """Where the customer's inbound messages are pushed (None / "none": its callback URL)."""
        url = _optional(url)
        self.store.set_mo_url(name, None if url is None else v.check_callback_url(url))

    def mo_url(self, name: str) -> str | None:
        return self.store.get_mo_url(name)

    def inbound_messages(
        self, customer: str | None = None, *, unrouted: bool = False, limit: int | str = 100
    ) -> list[InboundRecord]:
        """The latest inbound messages, newest first (``unrouted``: those nobody got)."""
        return self.store.list_inbound_messages(
            customer, limit=v.check_range(limit, "limit", 1, 1000), unrouted=unrouted
        )

    # -- blacklist --------------------------------------------------------------------------

    def blacklist_add(
        self, number: str, customer: str | None = None, note: str | None = None
    ) -> str:
        digits = v.check_number(number)
        self.store.add_blacklist(digits, customer, _optional(note))
        return digits

    def blacklist_remove(self, number: str, customer: str | None = None) -> str:
        digits = v.check_number(number)
        self.store.remove_blacklist(digits, customer)
        return digits

    def blacklist(self, customer: str | None = None) -> list[BlacklistEntry]:
        return self.store.list_blacklist(customer)

    # -- opt-out lists ----------------------------------------------------------------------

    def opt_out_add(self, customer: str, number: str) -> str:
        """Put a number on a customer's opt-out list (its sends there get Intercept)."""
        return OptOutService(self.store).add(customer, number, via="operator")

    def opt_out_remove(self, customer: str, number: str) -> str:
        return OptOutService(self.store).remove(customer, number)

    def opt_outs(self, customer: str) -> list[OptOut]:
        return OptOutService(self.store).list(customer)

    # -- country policies -------------------------------------------------------------------

    def policies(self) -> list[CountryPolicy]:
        return self.store.list_policies()

    def set_policy(
        self,
        country_code: str,
        *,
        requires_template: bool | None = None,
        requires_signature: bool | None = None,
        requires_registered_sender: bool | None = None,
        sender_format: str | None = None,
        note: str | None = None,
        opt_out_keywords: str | None = None,
        opt_in_keywords: str | None = None,
    ) -> CountryPolicy:
        """Create or change a destination's rules; options left None keep their value."""
        cc = v.check_country_code(country_code)
        policy = self.store.get_policy(cc) or CountryPolicy(
            country_code=cc,
            region=v.region_of(cc),
            requires_template=False,
            requires_signature=False,
            requires_registered_sender=False,
            sender_format="any",
        )
        if requires_template is not None:
            policy = replace(policy, requires_template=requires_template)
        if requires_signature is not None:
            policy = replace(policy, requires_signature=requires_signature)
        if requires_registered_sender is not None:
            policy = replace(policy, requires_registered_sender=requires_registered_sender)
        if sender_format is not None:
            policy = replace(policy, sender_format=v.check_sender_format(sender_format))
        if note is not None:
            policy = replace(policy, note=_optional(note))
        if opt_out_keywords is not None:
            words = _optional(opt_out_keywords)
            policy = replace(policy, opt_out_keywords=v.check_keywords(words) if words else None)
        if opt_in_keywords is not None:
            words = _optional(opt_in_keywords)
            policy = replace(policy, opt_in_keywords=v.check_keywords(words) if words else None)
        self.store.upsert_policy(policy)
        return policy

    def delete_policy(self, country_code: str) -> None:
        self.store.delete_policy(v.check_country_code(country_code))

    # -- registrations ----------------------------------------------------------------------

    def add_signature(self, customer: str, text: str) -> Registration:
        return self.store.add_signature(customer, v.check_signature(text))

    def add_template(
        self, customer: str, body: str, country_code: str | None = None
    ) -> Registration:
        cc = None if _optional(country_code) is None else v.check_country_code(str(country_code))
        return self.store.add_template(customer, v.check_template(body), cc)

    def add_sender(
        self, customer: str, sender: str, country_code: str | None = None
    ) -> Registration:
        cc = None if _optional(country_code) is None else v.check_country_code(str(country_code))
        return self.store.add_sender(customer, v.check_sender(sender), cc)

    def decide(
        self, kind: RegistrationKind, id: int, approve: bool, note: str | None = None
    ) -> Registration:
        """Approve or reject a signature, template or sender ID (either may be reversed later)."""
        note = _optional(note)
        if kind == "signature":
            op = self.store.approve_signature if approve else self.store.reject_signature
        elif kind == "template":
            op = self.store.approve_template if approve else self.store.reject_template
        else:
            op = self.store.approve_sender if approve else self.store.reject_sender
        return op(id, note)

    def registrations(
        self, kind: RegistrationKind, customer: str | None = None, status: str | None = None
    ) -> list[Registration]:
        return self.store.list_registrations(
            kind, customer, None if status is None else v.check_status(status)
        )
