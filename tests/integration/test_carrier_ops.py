"""CarrierOps on both engines: connectors, route rules, routing load, status upsert, versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from cloudsms.domain.routing import ALL_DOWN, NO_CARRIER, ROUTE_UNKNOWN, ConnectorStatus
from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import migrate, tables
from cloudsms.storage.engine import make_engine
from cloudsms.storage.store import Store


@pytest.fixture
def ops(database_url: str) -> Iterator[Store]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    store = Store(engine)
    try:
        yield store
    finally:
        store.close()


def _connector(ops: Store, name: str = "hk-1", **kw: object) -> int:
    settings: dict[str, object] = {
        "host": "smsc.example.net",
        "port": 2775,
        "system_id": "acme",
        "password": "secret",
        **kw,
    }
    return ops.create_connector(name, **settings).id  # type: ignore[arg-type]


def test_connector_round_trip_with_defaults_and_every_field(ops: Store) -> None:
    _connector(ops, "plain")
    plain = ops.get_connector("plain")
    assert (plain.bind_mode, plain.window, plain.throughput, plain.long_mode) == (
        "trx",
        50,
        0,
        "udh8",
    )
    assert plain.data_codings == {0, 8}
    assert (plain.source_ton, plain.source_npi, plain.dest_ton, plain.dest_npi) == (
        None,
        None,
        1,
        1,
    )
    assert plain.enabled and plain.id_mode == "as_is" and plain.created_ms > 0

    full = ops.create_connector(
        "full",
        host="10.0.0.9",
        port=2776,
        system_id="sys",
        password="pw12345",
        system_type="VMA",
        bind_mode="tx_rx",
        window=100,
        throughput=250,
        enquire_link_s=15,
        response_timeout_s=5,
        reconnect_max_s=60,
        long_mode="sar",
        data_codings={8, 3, 0},
        source_ton=5,
        source_npi=0,
        dest_ton=1,
        dest_npi=1,
        id_mode="hex_to_decimal",
    )
    assert ops.get_connector("full") == full
    assert full.data_codings == {0, 3, 8} and full.bind_mode == "tx_rx"
    assert full.system_type == "VMA" and full.source_ton == 5 and full.id_mode == "hex_to_decimal"
    assert [c.name for c in ops.list_connectors()] == ["full", "plain"]
    with ops.engine.connect() as conn:
        stored = conn.scalar(
            select(tables.connectors.c.data_codings).where(tables.connectors.c.name == "full")
        )
    assert stored == "0,3,8"


def test_connector_errors(ops: Store) -> None:
    _connector(ops)
    with pytest.raises(Conflict, match="already exists"):
        _connector(ops)
    with pytest.raises(NotFound, match="no connector 'nope'"):
        ops.get_connector("nope")
    with pytest.raises(NotFound):
        ops.update_connector("nope", window=5)
    with pytest.raises(NotFound):
        ops.remove_connector("nope")
    _connector(ops, "hk-2")
    with pytest.raises(Conflict):
        ops.update_connector("hk-2", name="hk-1")  # rename onto an existing name
    with pytest.raises(TypeError, match="not connector settings"):
        ops.update_connector("hk-1", colour="blue")


def test_update_rename_and_enable(ops: Store) -> None:
    _connector(ops)
    updated = ops.update_connector("hk-1", window=7, data_codings=[0, 3, 8], source_ton=None)
    assert updated.window == 7 and updated.data_codings == {0, 3, 8}
    renamed = ops.update_connector("hk-1", name="hk-main")
    assert renamed.name == "hk-main" and renamed.window == 7
    ops.set_connector_enabled("hk-main", False)
    assert not ops.get_connector("hk-main").enabled


def test_route_rules_add_list_remove(ops: Store) -> None:
    ops.create_route("main")
    ops.create_route("other")
    _connector(ops, "a")
    _connector(ops, "b")
    rule = ops.add_route_rule("main", "a", prefix="852", priority=1, weight=3)
    assert (rule.route, rule.connector, rule.prefix, rule.priority, rule.weight) == (
        "main",
        "a",
        "852",
        1,
        3,
    )
    ops.add_route_rule("main", "b")
    ops.add_route_rule("main", "b", prefix="8526")
    ops.add_route_rule("other", "a", prefix="86")
    listed = [(r.route, r.prefix, r.connector) for r in ops.list_route_rules()]
    assert listed == [
        ("main", "8526", "b"),
        ("main", "852", "a"),
        ("main", "", "b"),
        ("other", "86", "a"),
    ]
    assert [r.prefix for r in ops.list_route_rules("other")] == ["86"]
    with pytest.raises(Conflict, match="already uses connector 'a' for prefix 852"):
        ops.add_route_rule("main", "a", prefix="852", weight=9)
    with pytest.raises(NotFound, match="no route 'nope'"):
        ops.add_route_rule("nope", "a")
    with pytest.raises(NotFound, match="no connector 'zz'"):
        ops.add_route_rule("main", "zz")
    with pytest.raises(NotFound):
        ops.list_route_rules("nope")
    ops.remove_route_rule("main", "b", prefix="8526")
    with pytest.raises(NotFound, match="no rule"):
        ops.remove_route_rule("main", "b", prefix="8526")
    assert len(ops.list_route_rules("main")) == 2


def test_remove_connector_refuses_while_in_use_unless_forced(ops: Store) -> None:
    ops.create_route("main")
    connector_id = _connector(ops)
    ops.add_route_rule("main", "hk-1", prefix="852")
    ops.write_connector_status([ConnectorStatus(connector_id=connector_id, state="bound")])
    with pytest.raises(Conflict, match="used by 1 route rule"):
        ops.remove_connector("hk-1")
    assert ops.get_connector("hk-1").id == connector_id
    assert ops.remove_connector("hk-1", force=True) == 1
    assert ops.list_route_rules() == [] and ops.list_connectors() == []
    with ops.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(tables.connector_status)) == 0


def test_load_routing_builds_the_table(ops: Store) -> None:
    ops.create_route("main")
    ops.create_route("empty")
    a = _connector(ops, "a", data_codings={0, 3})
    b = _connector(ops, "b")
    _connector(ops, "off", enabled=False)
    ops.add_route_rule("main", "a", prefix="852", weight=3)
    ops.add_route_rule("main", "b", prefix="852", weight=1)
    ops.add_route_rule("main", "b", prefix="86", priority=1)
    ops.add_route_rule("main", "off", prefix="44")
    table = ops.load_routing()
    assert table.version == ops.config_version()
    picks = [table.select("main", "85261234567", available=lambda _: True) for _ in range(8)]
    assert picks.count(a) == 6 and picks.count(b) == 2
    assert table.select("main", "8613800138000", available=lambda _: True) == b
    assert table.select("main", "447700900123", available=lambda _: True) == NO_CARRIER
    assert table.select("main", "85261234567", available=lambda _: False) == ALL_DOWN
    assert table.select("empty", "85261234567", available=lambda _: True) == NO_CARRIER
    assert table.select("nope", "85261234567", available=lambda _: True) == ROUTE_UNKNOWN
    assert not table.latin1_capable("main")  # b takes 0,8 only
    assert table.connectors[a].data_codings == {0, 3}


def test_config_changes_bump_the_version_status_writes_do_not(ops: Store) -> None:
    ops.create_route("main")
    start = ops.config_version()
    connector_id = _connector(ops)
    ops.update_connector("hk-1", window=10)
    ops.set_connector_enabled("hk-1", False)
    ops.add_route_rule("main", "hk-1")
    ops.remove_route_rule("main", "hk-1")
    assert ops.config_version() == start + 5
    with pytest.raises(Conflict):
        _connector(ops)
    with pytest.raises(NotFound):
        ops.remove_route_rule("main", "hk-1")
    assert ops.config_version() == start + 5  # failed changes roll their bump back
    ops.write_connector_status([ConnectorStatus(connector_id=connector_id, state="bound")])
    ops.connector_statuses()
    ops.list_route_rules()
    ops.load_routing()
    assert ops.config_version() == start + 5
    ops.remove_connector("hk-1")
    assert ops.config_version() == start + 6


def test_status_upsert_and_missing_rows(ops: Store) -> None:
    a = _connector(ops, "a", window=20)
    _connector(ops, "b")
    _connector(ops, "c", enabled=False)
    statuses = {s.name: s for s in ops.connector_statuses()}
    assert statuses["a"].state == "down" and statuses["a"].updated_ms is None
    assert statuses["a"].window_size == 20
    assert statuses["c"].state == "disabled" and not statuses["c"].enabled

    first = ConnectorStatus(
        connector_id=a,
        state="bound",
        window_in_use=7,
        window_size=20,
        submit_rate=120,
        submitted_total=1000,
        owner="node-1",
        lease_until_ms=5_000,
        updated_ms=1_000,
    )
    assert ops.write_connector_status([first]) == 1
    got = {s.name: s for s in ops.connector_statuses()}["a"]
    assert (got.state, got.window_in_use, got.submit_rate, got.submitted_total) == (
        "bound",
        7,
        120,
        1000,
    )
    assert (got.owner, got.lease_until_ms, got.updated_ms) == ("node-1", 5_000, 1_000)

    # Second write: updates in place (one row), and a stamp-less row gets the current time.
    again = ConnectorStatus(
        connector_id=a, state="throttled", submitted_total=1500, last_error="ESME_RTHROTTLED"
    )
    assert ops.write_connector_status([again, ConnectorStatus(connector_id=9999)]) == 1
    got = {s.name: s for s in ops.connector_statuses()}["a"]
    assert got.state == "throttled" and got.last_error == "ESME_RTHROTTLED"
    assert got.submitted_total == 1500 and got.owner is None
    assert got.updated_ms is not None and got.updated_ms > 1_000
    with ops.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(tables.connector_status)) == 1
    assert ops.write_connector_status([]) == 0


def test_status_write_of_many_rows_in_one_call(ops: Store) -> None:
    ids = [_connector(ops, f"c{i}") for i in range(5)]
    rows = [ConnectorStatus(connector_id=cid, state="bound", submit_rate=cid) for cid in ids]
    assert ops.write_connector_status(rows) == 5
    assert ops.write_connector_status(rows) == 5
    assert {s.submit_rate for s in ops.connector_statuses()} == set(ids)
