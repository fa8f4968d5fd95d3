"""Routing decisions: longest prefix, priority failover, exact weighted shares, reject causes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from cloudsms.domain.routing import (
    ALL_DOWN,
    NO_CARRIER,
    ROUTE_UNKNOWN,
    ConnectorConfig,
    RouteRule,
    RoutingTable,
    source_address_params,
)

MAIN, SPARE = 1, 2


def _connector(
    cid: int, *, enabled: bool = True, codings: Iterable[int] = (0, 8)
) -> ConnectorConfig:
    return ConnectorConfig(
        id=cid,
        name=f"c{cid}",
        host="127.0.0.1",
        port=2775,
        system_id="test",
        password="pw",
        enabled=enabled,
        data_codings=frozenset(codings),
    )


def _rule(
    cid: int, prefix: str = "", priority: int = 0, weight: int = 1, route: int = MAIN
) -> RouteRule:
    return RouteRule(
        route_id=route, prefix=prefix, connector_id=cid, priority=priority, weight=weight
    )


def _table(rules: list[RouteRule], connectors: list[ConnectorConfig] | None = None) -> RoutingTable:
    if connectors is None:
        ids = {r.connector_id for r in rules}
        connectors = [_connector(cid) for cid in sorted(ids)]
    return RoutingTable.build({"main": MAIN, "spare": SPARE}, rules, {c.id: c for c in connectors})


def _up(*ids: int) -> Callable[[int], bool]:
    up = set(ids)
    return lambda cid: cid in up


def always(_: int) -> bool:
    return True


def test_longest_prefix_wins_and_empty_prefix_matches_everything() -> None:
    table = _table([_rule(1, ""), _rule(2, "852"), _rule(3, "8526"), _rule(4, "85261")])
    assert table.select("main", "85261234567", available=always) == 4
    assert table.select("main", "85262234567", available=always) == 3
    assert table.select("main", "85291234567", available=always) == 2
    assert table.select("main", "8613800138000", available=always) == 1
    # A number shorter than a prefix never matches it.
    assert table.select("main", "852", available=always) == 2


def test_longest_prefix_does_not_fall_back_to_shorter_prefix_when_down() -> None:
    # The 8526 rule's connector is down: failover is by priority, not by a shorter prefix.
    table = _table([_rule(1, "852"), _rule(2, "8526")])
    assert table.select("main", "85261234567", available=_up(1)) == ALL_DOWN
    assert table.select("main", "85291234567", available=_up(1)) == 1


def test_priority_groups_fail_over_in_order() -> None:
    table = _table([_rule(1, "852", 0), _rule(2, "852", 5), _rule(3, "852", 9)])
    number = "85261234567"
    assert table.select("main", number, available=_up(1, 2, 3)) == 1
    assert table.select("main", number, available=_up(2, 3)) == 2
    assert table.select("main", number, available=_up(3)) == 3
    assert table.select("main", number, available=_up()) == ALL_DOWN


def test_weights_three_to_one_are_exact_over_400_picks() -> None:
    table = _table([_rule(1, "852", weight=3), _rule(2, "852", weight=1)])
    picks = [table.select("main", "85261234567", available=always) for _ in range(400)]
    assert Counter(picks) == {1: 300, 2: 100}
    # Smooth: the lighter connector is interleaved, never starved for a long run.
    assert all(Counter(picks[i : i + 4]) == {1: 3, 2: 1} for i in range(0, 400, 4))


def test_weighted_share_among_available_only_and_state_per_group() -> None:
    table = _table(
        [
            _rule(1, "852", weight=2),
            _rule(2, "852", weight=1),
            _rule(3, "852", weight=1),
            _rule(1, "86", weight=1),
            _rule(2, "86", weight=1),
        ]
    )
    # Connector 3 down: 1 and 2 share 2:1.
    picks = Counter(table.select("main", "85261234567", available=_up(1, 2)) for _ in range(300))
    assert picks == {1: 200, 2: 100}
    # The 86 group keeps its own state: exact 1:1 regardless of the 852 picks.
    picks86 = Counter(table.select("main", "8613800138000", available=always) for _ in range(10))
    assert picks86 == {1: 5, 2: 5}


def test_down_connector_is_skipped_within_a_group() -> None:
    table = _table([_rule(1, "", weight=5), _rule(2, "", weight=1)])
    assert {table.select("main", "447700900123", available=_up(2)) for _ in range(20)} == {2}


def test_route_unknown_no_carrier_and_all_down() -> None:
    table = _table([_rule(1, "852")])
    assert table.select("nope", "85261234567", available=always) == ROUTE_UNKNOWN
    assert table.select("main", "8613800138000", available=always) == NO_CARRIER
    assert table.select("spare", "85261234567", available=always) == NO_CARRIER  # no rules
    assert table.select("main", "85261234567", available=_up()) == ALL_DOWN
    assert table.reject_cause("nope", "852") == ROUTE_UNKNOWN
    assert table.reject_cause("main", "8613800138000") == NO_CARRIER
    assert table.reject_cause("main", "85261234567") is None


def test_disabled_connectors_are_as_if_their_rules_did_not_exist() -> None:
    connectors = [_connector(1), _connector(2, enabled=False), _connector(3, enabled=False)]
    table = _table([_rule(1, "852"), _rule(2, "8526"), _rule(3, "86")], connectors)
    # 8526's only connector is disabled: the 852 rule serves it.
    assert table.select("main", "85261234567", available=always) == 1
    # Every rule matching 86 is disabled: no carrier (a rejection, not "all down").
    assert table.select("main", "8613800138000", available=always) == NO_CARRIER
    assert table.route_connectors("main") == {1}


def test_available_is_not_asked_about_connectors_outside_the_candidates() -> None:
    asked: list[int] = []
    table = _table([_rule(1, "852"), _rule(2, "86"), _rule(3, "852", priority=1)])

    def available(cid: int) -> bool:
        asked.append(cid)
        return True

    assert table.select("main", "85261234567", available=available) == 1
    assert asked == [1]


def test_rules_of_unknown_routes_or_connectors_are_ignored() -> None:
    table = RoutingTable.build(
        {"main": MAIN}, [_rule(1, "852", route=99), _rule(42, "852")], {1: _connector(1)}
    )
    assert table.select("main", "85261234567", available=always) == NO_CARRIER
    assert table.route_names == {"main"}


def test_latin1_capable_only_if_every_usable_connector_takes_dcs_3() -> None:
    connectors = [
        _connector(1, codings=(0, 3, 8)),
        _connector(2, codings=(0, 3)),
        _connector(3, codings=(0, 8)),
        _connector(4, codings=(0, 8), enabled=False),
    ]
    rules = [_rule(1, "852"), _rule(2, "86", priority=1), _rule(4, "")]
    assert _table(rules, connectors).latin1_capable("main")  # 4 is disabled: not usable
    assert not _table([*rules, _rule(3, "44")], connectors).latin1_capable("main")
    assert not _table(rules, connectors).latin1_capable("spare")  # no connector at all
    assert not _table(rules, connectors).latin1_capable("unknown")


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("ACME", (5, 0)),
        ("Bank 24", (5, 0)),
        ("12345A", (5, 0)),
        ("85261234567", (1, 1)),
        ("+85261234567", (1, 1)),
        ("1234567", (1, 1)),
        ("10690", (0, 1)),
        ("123456", (0, 1)),
    ],
)
def test_source_address_params_derived_from_the_sender(
    sender: str, expected: tuple[int, int]
) -> None:
    assert source_address_params(sender, _connector(1)) == expected


def test_source_address_params_configured_values_win_one_by_one() -> None:
    both = ConnectorConfig(
        id=1, name="c", host="h", port=1, system_id="s", password="", source_ton=2, source_npi=9
    )
    only_ton = ConnectorConfig(
        id=1, name="c", host="h", port=1, system_id="s", password="", source_ton=3
    )
    assert source_address_params("ACME", both) == (2, 9)
    assert source_address_params("ACME", only_ton) == (3, 0)
    assert source_address_params("85261234567", only_ton) == (3, 1)


def test_password_is_not_in_the_repr() -> None:
    cfg = ConnectorConfig(id=1, name="c", host="h", port=1, system_id="s", password="s3cr3t")
    assert "s3cr3t" not in repr(cfg)
    assert cfg.password == "s3cr3t"
