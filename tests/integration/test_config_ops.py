"""ConfigOps on both engines: every operation's effect, version bumps, snapshot, errors."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cloudsms.domain.models import CountryPolicy
from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables
from cloudsms.storage.store import Store

KEY_A = "A" * 128
KEY_B = "B" * 128


@pytest.fixture
def ops(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    try:
        yield store
    finally:
        store.close()


def _customer(ops: Store, name: str = "acme", key: str = KEY_A, **kw: object) -> int:
    return ops.create_customer(name, auth_key=key, currency="HKD", **kw).id  # type: ignore[arg-type]


def test_every_change_bumps_the_version_and_a_failed_one_does_not(ops: Store) -> None:
    start = ops.config_version()
    _customer(ops)
    assert ops.config_version() == start + 1
    ops.set_callback_url("acme", "https://example.com/dr")
    ops.add_network("acme", "10.0.0.0/8")
    assert ops.config_version() == start + 3
    with pytest.raises(Conflict):
        _customer(ops)
    with pytest.raises(NotFound):
        ops.set_customer_enabled("nobody", False)
    assert ops.config_version() == start + 3
    ops.list_customers()
    ops.load_snapshot()
    assert ops.config_version() == start + 3


def test_customer_fields_round_trip(ops: Store) -> None:
    ops.create_price_list("retail", "HKD")
    created = ops.create_customer(
        "acme",
        auth_key=KEY_A,
        currency="HKD",
        price_list="retail",
        callback_url="https://example.com/dr",
        credit_limit_micros=5_000_000,
        default_sender="ACME",
    )
    assert created.price_list == "retail" and created.enabled and created.balance_micros == 0
    ops.set_customer_enabled("acme", False)
    ops.set_default_sender("acme", None)
    ops.set_client_cert_sha256("acme", "ab" * 32)
    ops.set_credit_limit(created.id, 7_000_000)
    ops.set_max_backlog("acme", 500)
    ops.set_report_intermediate("acme", True)
    ops.set_auth_key("acme", KEY_B)
    ops.set_customer_price_list("acme", None)
    got = ops.get_customer("acme")
    assert ops.get_customer(created.id) == got
    assert (got.enabled, got.default_sender, got.client_cert_sha256) == (False, None, "ab" * 32)
    assert (got.credit_limit_micros, got.max_backlog, got.report_intermediate) == (
        7_000_000,
        500,
        True,
    )
    assert (got.auth_key, got.price_list, got.price_list_id) == (KEY_B, None, None)
    assert got.callback_url == "https://example.com/dr"
    assert got.updated_ms >= got.created_ms
    assert [c.name for c in ops.list_customers()] == ["acme"]


def test_duplicates_conflict_with_readable_messages(ops: Store) -> None:
    _customer(ops)
    with pytest.raises(Conflict, match="customer 'acme' already exists"):
        _customer(ops, key=KEY_B)
    with pytest.raises(Conflict, match="auth key"):
        _customer(ops, "other", key=KEY_A)
    _customer(ops, "other", key=KEY_B)
    with pytest.raises(Conflict, match="already in use"):
        ops.set_auth_key("other", KEY_A)
    ops.create_price_list("retail", "HKD")
    with pytest.raises(Conflict, match="price list 'retail' already exists"):
        ops.create_price_list("retail", "USD")
    ops.create_route("main")
    with pytest.raises(Conflict, match="route 'main' already exists"):
        ops.create_route("main")


def test_unknown_names_are_not_found(ops: Store) -> None:
    with pytest.raises(NotFound, match="no customer 'ghost'"):
        ops.get_customer("ghost")
    with pytest.raises(NotFound):
        ops.get_customer(999)
    with pytest.raises(NotFound, match="no price list"):
        ops.set_price("ghost", "852", 1)
    with pytest.raises(NotFound, match="no route"):
        _customer(ops)
        ops.grant_route("ghost", "acme")
    with pytest.raises(NotFound):
        ops.add_signature("ghost", "ACME")
    with pytest.raises(NotFound, match="no template with id 42"):
        ops.approve_template(42)
    with pytest.raises(NotFound):
        ops.change_balance("ghost", 1, actor="t")


def test_balance_changes_are_exact_and_ledgered(ops: Store) -> None:
    _customer(ops, balance_micros=100_000_000, actor="alice")
    assert ops.change_balance("acme", 1, actor="bob", note="one micro") == 100_000_001
    assert ops.change_balance("acme", -100_000_002, actor="bob") == -1
    assert ops.get_customer("acme").balance_micros == -1
    ledger = ops.ledger("acme")
    assert [(e.delta_micros, e.balance_after_micros, e.actor, e.note) for e in ledger] == [
        (-100_000_002, -1, "bob", None),
        (1, 100_000_001, "bob", "one micro"),
        (100_000_000, 100_000_000, "alice", "opening balance"),
    ]
    _customer(ops, "zero", key=KEY_B)
    assert ops.ledger("zero") == []  # no opening-balance row for 0


def test_networks_add_remove(ops: Store) -> None:
    _customer(ops)
    ops.add_network("acme", "10.0.0.0/8")
    ops.add_network("acme", "2001:db8::/32")
    with pytest.raises(Conflict, match="already whitelisted"):
        ops.add_network("acme", "10.0.0.0/8")
    assert ops.get_customer("acme").networks == ("10.0.0.0/8", "2001:db8::/32")
    ops.remove_network("acme", "10.0.0.0/8")
    assert ops.get_customer("acme").networks == ("2001:db8::/32",)
    with pytest.raises(NotFound, match="not whitelisted"):
        ops.remove_network("acme", "10.0.0.0/8")


def test_price_lists(ops: Store) -> None:
    ops.create_price_list("retail", "HKD")
    ops.set_price("retail", "852", 52_500)
    ops.set_price("retail", "8526", 40_000)
    ops.set_price("retail", "852", 60_000)  # replaces
    assert ops.get_price_list("retail").prices == {"852": 60_000, "8526": 40_000}
    ops.remove_price("retail", "8526")
    with pytest.raises(NotFound, match="no price for prefix 8526"):
        ops.remove_price("retail", "8526")
    ops.create_price_list("usd", "USD")
    assert [(p.name, p.currency, p.prices) for p in ops.list_price_lists()] == [
        ("retail", "HKD", {"852": 60_000}),
        ("usd", "USD", {}),
    ]
    _customer(ops)
    with pytest.raises(Conflict, match="is in USD but the customer is billed in HKD"):
        ops.set_customer_price_list("acme", "usd")
    with pytest.raises(Conflict, match="USD"):
        ops.create_customer("b", auth_key=KEY_B, currency="HKD", price_list="usd")
    ops.set_customer_price_list("acme", "retail")
    assert ops.get_customer("acme").price_list == "retail"


def test_routes_and_grants(ops: Store) -> None:
    _customer(ops)
    ops.create_route("main", latin1=True, description="primary")
    ops.create_route("backup")
    ops.grant_route("main", "acme")
    with pytest.raises(Conflict, match="already granted"):
        ops.grant_route("main", "acme")
    routes = {r.name: r for r in ops.list_routes()}
    assert routes["main"].customers == ("acme",) and routes["main"].latin1
    assert routes["main"].description == "primary" and routes["backup"].customers == ()
    assert ops.get_customer("acme").routes == ("main",)
    ops.revoke_route("main", "acme")
    with pytest.raises(NotFound, match="not granted"):
        ops.revoke_route("main", "acme")
    assert ops.get_customer("acme").routes == ()


def test_blacklist_platform_wide_and_per_customer(ops: Store) -> None:
    _customer(ops)
    ops.add_blacklist("85261234567", note="complaint")
    with pytest.raises(Conflict, match="platform-wide"):  # NULL customer: checked by hand
        ops.add_blacklist("85261234567")
    ops.add_blacklist("85261234567", "acme")
    with pytest.raises(Conflict, match="for customer 'acme'"):
        ops.add_blacklist("85261234567", "acme")
    entries = ops.list_blacklist()
    assert sorted((e.customer or "", e.note or "") for e in entries) == [
        ("", "complaint"),
        ("acme", ""),
    ]
    assert {e.number for e in entries} == {"85261234567"}
    assert [e.customer for e in ops.list_blacklist("acme")] == ["acme"]
    ops.remove_blacklist("85261234567")
    assert [e.customer for e in ops.list_blacklist()] == ["acme"]
    with pytest.raises(NotFound, match="not blacklisted platform-wide"):
        ops.remove_blacklist("85261234567")


def test_country_policies(ops: Store) -> None:
    seeded = {p.country_code: p for p in ops.list_policies()}
    assert seeded[86].requires_template and seeded[82].sender_format == "numeric"
    ops.upsert_policy(
        CountryPolicy(
            country_code=65,
            region="SG",
            requires_template=False,
            requires_signature=True,
            requires_registered_sender=False,
            sender_format="alpha",
            note="test",
        )
    )
    ops.upsert_policy(
        CountryPolicy(
            country_code=86,
            region="CN",
            requires_template=False,
            requires_signature=False,
            requires_registered_sender=False,
            sender_format="any",
        )
    )
    assert ops.get_policy(65) is not None and ops.get_policy(65).sender_format == "alpha"  # type: ignore[union-attr]
    assert ops.get_policy(86) is not None and not ops.get_policy(86).requires_template  # type: ignore[union-attr]
    ops.delete_policy(65)
    assert ops.get_policy(65) is None
    with pytest.raises(NotFound, match=r"\+65"):
        ops.delete_policy(65)


def test_registration_life_cycle(ops: Store) -> None:
    _customer(ops)
    sig = ops.add_signature("acme", "ACME")
    assert (sig.kind, sig.status, sig.customer, sig.text) == (
        "signature",
        "pending",
        "acme",
        "ACME",
    )
    with pytest.raises(Conflict, match="already has this signature"):
        ops.add_signature("acme", "ACME")
    tpl = ops.add_template("acme", "Code {code}", 86)
    ops.add_template("acme", "Code {code}", None)  # same body, other scope: fine
    with pytest.raises(Conflict, match="template"):
        ops.add_template("acme", "Code {code}", None)
    snd = ops.add_sender("acme", "ACME", None)
    with pytest.raises(Conflict, match="sender"):  # NULL country: checked by hand
        ops.add_sender("acme", "ACME", None)
    approved = ops.approve_signature(sig.id, "ok")
    assert approved.status == "approved" and approved.note == "ok" and approved.decided_ms
    with pytest.raises(Conflict, match="already approved"):
        ops.approve_signature(sig.id)
    assert ops.reject_template(tpl.id, "bad").status == "rejected"
    assert ops.approve_sender(snd.id).status == "approved"
    assert ops.reject_sender(snd.id).status == "rejected"  # withdrawal
    assert [r.id for r in ops.list_registrations("template", status="rejected")] == [tpl.id]
    assert len(ops.list_registrations("template", customer="acme")) == 2
    assert ops.list_registrations("sender", status="approved") == []
    assert ops.list_registrations("template")[0].country_code == 86


def test_snapshot_holds_what_the_accept_path_needs(ops: Store) -> None:
    ops.create_price_list("retail", "HKD")
    ops.set_price("retail", "852", 52_500)
    on = ops.create_customer("on", auth_key=KEY_A, currency="HKD", price_list="retail")
    off = ops.create_customer("off", auth_key=KEY_B, currency="HKD")
    ops.set_customer_enabled("off", False)
    ops.add_network("on", "10.1.2.0/24")
    ops.add_network("on", "2001:db8::1/128")
    ops.create_route("main", latin1=True)
    ops.grant_route("main", "on")
    ops.add_blacklist("85290000000")
    ops.add_blacklist("85291111111", "on")
    sig_ok = ops.add_signature("on", "OK")
    ops.add_signature("on", "PENDING")
    sig_no = ops.add_signature("on", "NO")
    tpl = ops.add_template("on", "Code {c}", 86)
    ops.add_template("on", "Pending {c}")
    snd = ops.add_sender("on", "ACME", 852)
    ops.approve_signature(sig_ok.id)
    ops.reject_signature(sig_no.id)
    ops.approve_template(tpl.id)
    ops.approve_sender(snd.id)

    snap = ops.load_snapshot()
    assert snap.version == ops.config_version()
    assert set(snap.customers_by_key) == {KEY_A}  # disabled "off" is absent
    customer = snap.customers_by_key[KEY_A]
    assert customer.id == on.id and customer.price_list_id == on.price_list_id
    assert set(customer.networks) == {
        ipaddress.ip_network("10.1.2.0/24"),
        ipaddress.ip_network("2001:db8::1/128"),
    }
    assert snap.prices == {on.price_list_id: {"852": 52_500}}
    route = snap.routes_by_name["main"]
    assert route.latin1 and snap.grants == frozenset({(on.id, route.id)})
    assert snap.blacklist_global == frozenset({"85290000000"})
    assert snap.blacklist_by_customer == {on.id: frozenset({"85291111111"})}
    assert snap.signatures == {on.id: frozenset({"OK"})}
    assert [(t.body, t.country_code, t.status) for t in snap.templates[on.id]] == [
        ("Code {c}", 86, "approved")
    ]
    assert snap.senders == {on.id: frozenset({("ACME", 852)})}
    assert 86 in snap.policies and snap.policies[82].sender_format == "numeric"
    assert off.id not in {c.id for c in snap.customers_by_key.values()}

    ops.set_auth_key("on", "C" * 128)  # rotation: the old key vanishes at the next load
    assert set(ops.load_snapshot().customers_by_key) == {"C" * 128}


def test_created_rows_use_the_store_clock(ops: Store) -> None:
    before = ops.now_ms()
    _customer(ops)
    ops.add_blacklist("85261234567")
    with ops.engine.connect() as conn:
        created = conn.scalar(select(tables.blacklist.c.created_ms))
    assert created is not None and before <= created <= ops.now_ms()
