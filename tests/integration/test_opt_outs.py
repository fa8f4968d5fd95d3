"""Opt-out lists end to end on SQLite and PostgreSQL: an inbound STOP (the call the MO path makes)
puts the number on the customer's list, and a send to it through the real UIP endpoint is
answered Intercept for that recipient, as a blacklisted number is; START takes it off."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from seed import Seeded, seed_customer

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import OPT_IN, OPT_OUT
from cloudsms.exceptions import ConfigError, Conflict, NotFound
from cloudsms.services.operator import Operator
from cloudsms.services.opt_outs import OptOutService
from cloudsms.storage.memory import MemoryStore
from cloudsms.storage.store import Store


def send(http: httpx.Client, server: Any, seeded: Seeded, *numbers: tuple[int, str]) -> Any:
    body = {
        "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": 7, "TIME": "now",
        "AUTH_KEY": seeded.auth_key, "ROUTE_ID": seeded.route, "VERSION": "2021-01-01",
        "SMS_CONTENT": "Your code is 123345.",
        "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": cc, "DEST_MSISDN": n} for cc, n in numbers],
    }  # fmt: skip
    response = http.post(server.url, content=orjson.dumps(body))
    assert response.status_code == 200
    return orjson.loads(response.content)


def opted_out(server: Any, customer_id: int) -> frozenset[str]:
    snapshot = server.platform.config.current.snapshot
    found: frozenset[str] = snapshot.opt_outs_by_customer.get(customer_id, frozenset())
    return found


def test_stop_gets_intercept_and_start_lifts_it(
    store: Store, make_server: Any, http: httpx.Client
) -> None:
    seeded = seed_customer(store.engine)
    other = seed_customer(store.engine, name="beta", route=seeded.route)
    server = make_server()
    service = OptOutService(store)

    # The handset +852 6700 0012 answers "ＳＴＯＰ" (full-width) to acme.
    assert service.apply_inbound_opt(seeded.customer_id, "+852 6700 0012", "ＳＴＯＰ") is OPT_OUT
    assert service.apply_inbound_opt(seeded.customer_id, "85267000012", "stop") is OPT_OUT
    assert service.apply_inbound_opt(seeded.customer_id, "85267000013", "hello") is None
    [entry] = store.list_opt_outs(seeded.customer_id)
    assert (entry.number, entry.via, entry.keyword) == ("85267000012", "keyword", "STOP")
    server.wait_config(lambda: "85267000012" in opted_out(server, seeded.customer_id))

    ans = send(http, server, seeded, (852, "67000011"), (852, "67000012"))
    assert [d["RESULT_CODE"] for d in ans["DETAIL_LIST"]] == [ResultCode.OK, ResultCode.INTERCEPT]
    refused = ans["DETAIL_LIST"][1]
    assert refused["RESULT_DESC"] == "Intercept" and not refused["SMS_UID"]
    assert refused["RESULT_DETAIL"] == "+852 67000012 opted out of this account's messages (STOP)"
    # Only this number alone: the packet is Intercept as a whole, as for the blacklist.
    assert send(http, server, seeded, (852, "67000012"))["RESULT_CODE"] == ResultCode.INTERCEPT
    # Another customer's sends to the number are not affected: the list is acme's.
    ans = send(http, server, other, (852, "67000012"))
    assert ans["RESULT_CODE"] == ResultCode.OK

    # START from the handset takes it off; sends go through again.
    assert service.apply_inbound_opt(seeded.customer_id, "0085267000012", "Start") is OPT_IN
    assert store.list_opt_outs(seeded.customer_id) == []
    server.wait_config(lambda: not opted_out(server, seeded.customer_id))
    assert send(http, server, seeded, (852, "67000012"))["RESULT_CODE"] == ResultCode.OK


def test_a_country_policy_sets_its_own_keywords(store: Store) -> None:
    seeded = seed_customer(store.engine)
    op = Operator(store)
    policy = op.set_policy("86", opt_out_keywords="退订, 取消,TD", opt_in_keywords="开通")
    assert policy.opt_out_keywords == ("退订", "取消", "TD")
    assert store.get_policy(86) == policy and policy.requires_template  # the seeded rules kept
    service = OptOutService(store)
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138000", "STOP") is None
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138000", "取消") is OPT_OUT
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138001", "ｔｄ") is OPT_OUT
    assert service.apply_inbound_opt(seeded.customer_id, "+85261234567", "STOP") is OPT_OUT
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138000", "START") is None
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138000", "开通") is OPT_IN
    assert [o.number for o in store.list_opt_outs("acme")] == ["85261234567", "8613800138001"]
    # "none" goes back to the defaults.
    policy = op.set_policy("86", opt_out_keywords="none", opt_in_keywords="none")
    assert policy.opt_out_keywords is None and store.get_policy(86) == policy
    assert service.apply_inbound_opt(seeded.customer_id, "+8613800138002", "STOP") is OPT_OUT
    with pytest.raises(ConfigError, match="comma-separated single words"):
        op.set_policy("86", opt_out_keywords="STOP NOW")


def test_bad_input_is_refused_readably(store: Store) -> None:
    seed_customer(store.engine)
    service = OptOutService(store)
    assert service.add("acme", "+852 61234567".replace(" ", ""), via="operator") == "85261234567"
    with pytest.raises(Conflict, match="already on the opt-out list of 'acme'"):
        service.add("acme", "85261234567", via="customer")
    with pytest.raises(NotFound, match="not on the opt-out list"):
        service.remove("acme", "85261234000")
    with pytest.raises(NotFound, match="no customer 'nobody'"):
        service.add("nobody", "85261234567", via="operator")
    with pytest.raises(ConfigError, match="digits"):
        service.add("acme", "6123-4567", via="operator")
    with pytest.raises(ConfigError, match="calling code"):
        service.add("acme", "99912345", via="operator")
    # A national-format source cannot be placed: ignored, nothing listed.
    assert service.apply_inbound_opt(1, "61234567x", "STOP") is None
    assert [o.number for o in store.list_opt_outs("acme")] == ["85261234567"]


async def test_the_mo_hook_applies_keywords_off_the_loop_on_the_memory_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``on_inbound`` is what an event-loop hook calls: it returns at once, the change lands in a
    worker thread, and a failure is logged, never raised into the MO path."""
    store = MemoryStore()
    cid = store.add_customer(name="acme")
    store.set_snapshot_fields(policies={86: _cn_policy(out=("取消",))})
    service = OptOutService(store)
    service.on_inbound(cid, "+85261234567", "Ｓｔｏｐ!")
    service.on_inbound(cid, "+8613800138000", "STOP")  # not a keyword for +86 here
    service.on_inbound(cid, "+8613800138001", "取消")
    service.on_inbound(None, "+85261234000", "STOP")  # unrouted: no list to change
    service.on_inbound(cid + 1, "+85261234001", "STOP")  # no such customer: logged
    await service.drain()
    assert store.load_snapshot().opt_outs_by_customer == {
        cid: frozenset({"85261234567", "8613800138001"})
    }
    assert "opt-out keyword not applied" in caplog.text
    service.on_inbound(cid, "85261234567", "START")
    await service.drain()
    assert [o.number for o in store.list_opt_outs(cid)] == ["8613800138001"]


def _cn_policy(out: tuple[str, ...]) -> CountryPolicy:
    return CountryPolicy(
        country_code=86, region="CN", requires_template=True, requires_signature=True,
        requires_registered_sender=False, sender_format="any", opt_out_keywords=out,
    )  # fmt: skip
