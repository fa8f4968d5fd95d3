"""The admin REST API against a live platform: every configuration area the CLI covers."""

from __future__ import annotations

import time

from conftest import Admin, ok, send_sms

from cloudsms.admin.operations import OPERATIONS


def test_customers_keys_money_and_audit(admin: Admin) -> None:
    api = admin.api
    ok(api.post("/api/v1/price-lists", json={"name": "retail", "currency": "HKD"}), 201)
    ok(api.put("/api/v1/price-lists/retail/prices/852", json={"amount": "0.05"}))
    created = ok(
        api.post(
            "/api/v1/customers",
            json={"name": "acme", "currency": "hkd", "price_list": "retail", "balance": "100"},
        ),
        201,
    )
    assert len(created["auth_key"]) == 128 and created["balance"] == "100.00"
    listed = ok(api.get("/api/v1/customers"))
    assert [c["name"] for c in listed] == ["acme"] and "auth_key" not in listed[0]

    topped = ok(api.post("/api/v1/customers/acme/top-up", json={"amount": "25.5", "note": "inv 7"}))
    assert topped == {"balance": "125.50", "balance_micros": 125_500_000, "currency": "HKD"}
    ok(api.post("/api/v1/customers/acme/adjust", json={"amount": "-0.5"}))
    ledger = ok(api.get("/api/v1/customers/acme/ledger"))
    assert [e["delta"] for e in ledger] == ["-0.50", "25.50", "100.00"]
    assert ledger[0]["actor"] == "token:alice" and ledger[1]["note"] == "inv 7"

    changed = ok(
        api.patch(
            "/api/v1/customers/acme",
            json={"callback_url": "https://example.com/dr", "max_backlog": 10, "enabled": False},
        )
    )
    assert set(changed["changed"]) == {"max backlog", "callback url", "enabled"}
    assert changed["customer"]["enabled"] is False
    assert changed["customer"]["callback_url"] == "https://example.com/dr"

    ok(api.post("/api/v1/customers/acme/networks", json={"cidr": "10.0.0.1"}))
    assert ok(api.get("/api/v1/customers/acme"))["networks"] == ["10.0.0.1/32"]
    ok(api.delete("/api/v1/customers/acme/networks", params={"cidr": "10.0.0.1/32"}))
    new_key = ok(api.post("/api/v1/customers/acme/rotate-key"))["auth_key"]
    assert new_key != created["auth_key"]

    audit = ok(api.get("/api/v1/audit", params={"target": "acme"}))
    actions = [e["action"] for e in audit]
    assert actions[:3] == [
        "customers.rotate_key",
        "customers.whitelist_remove",
        "customers.whitelist_add",
    ]
    assert {e["actor"] for e in audit} == {"token:alice"}
    top_up = next(e for e in audit if e["action"] == "customers.top_up")
    assert top_up["detail"] == {"name": "acme", "amount": "25.5", "note": "inv 7"}


def test_delete_takes_its_parameters_as_a_json_body_too(admin: Admin) -> None:
    """Issue 12 item 15: a DELETE's JSON body was ignored (only ``?cidr=`` counted), so an
    optional parameter sent in the body silently did nothing; and a GET's body likewise."""
    api = admin.api
    ok(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    for cidr in ("10.0.0.1", "10.0.0.2", "2001:db8::/48"):
        ok(api.post("/api/v1/customers/acme/networks", json={"cidr": cidr}))
    networks = "/api/v1/customers/acme/networks"
    ok(api.request("DELETE", networks, json={"cidr": "10.0.0.1/32"}))
    ok(api.delete(networks, params={"cidr": "2001:db8::/48"}))  # the query string still works
    assert ok(api.get("/api/v1/customers/acme"))["networks"] == ["10.0.0.2/32"]
    # An optional parameter in the body is applied, not dropped: only the 852 rule goes.
    ok(api.post("/api/v1/routes", json={"name": "OTP"}), 201)
    ok(api.post("/api/v1/connectors", json={"name": "hk-1", "host": "127.0.0.1", "port": 2775,
                                            "system_id": "a", "password": "p"}), 201)  # fmt: skip
    for prefix in ("852", None):
        ok(api.post("/api/v1/routes/OTP/rules", json={"connector": "hk-1", "prefix": prefix}))
    rules = "/api/v1/routes/OTP/rules"
    ok(api.request("DELETE", rules, json={"connector": "hk-1", "prefix": "852"}))
    [rule] = ok(api.get(rules))
    assert rule["prefix"] == ""  # the catch-all rule stays
    # Unknown, doubled or misplaced input is refused with a sentence, never ignored.
    for response, words in [
        (api.request("DELETE", networks, json={"cidr": "10.0.0.2", "x": 1}), "unknown parameter"),
        (api.request("DELETE", networks, params={"cidr": "10.0.0.2"}, json={"cidr": "10.0.0.2"}),
         "given twice"),
        (api.request("DELETE", networks, content=b"[1]"), "JSON object"),
        (api.request("GET", "/api/v1/messages", json={"customer": "acme"}), "query string"),
    ]:  # fmt: skip
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["ok"] is False and words in body["error"], body
    assert ok(api.get("/api/v1/customers/acme"))["networks"] == ["10.0.0.2/32"]


def test_routes_connectors_rules_blacklist_policies(admin: Admin) -> None:
    api = admin.api
    ok(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    ok(api.post("/api/v1/routes", json={"name": "OTP", "description": "one-time codes"}), 201)
    ok(api.post("/api/v1/routes/OTP/grants", json={"customer": "acme"}))
    conn = ok(
        api.post(
            "/api/v1/connectors",
            json={
                "name": "hk-1", "host": "127.0.0.1", "port": 2775, "system_id": "acme",
                "password": "secret", "window": 20, "data_codings": "0,3,8",
            },
        ),
        201,
    )  # fmt: skip
    assert conn["password"] == "***" and conn["window"] == 20 and conn["data_codings"] == [0, 3, 8]
    ok(api.post("/api/v1/routes/OTP/rules", json={"connector": "hk-1", "prefix": "852"}))
    routes = ok(api.get("/api/v1/routes"))
    assert routes[0]["customers"] == ["acme"] and routes[0]["rules"][0]["connector"] == "hk-1"
    assert routes[0]["enabled"] is True
    ok(api.patch("/api/v1/routes/OTP", json={"enabled": False}))
    assert ok(api.get("/api/v1/routes"))[0]["enabled"] is False
    changed = ok(api.patch("/api/v1/connectors/hk-1", json={"throughput": 100, "enabled": False}))
    assert changed["connector"]["throughput"] == 100 and changed["connector"]["enabled"] is False
    statuses = ok(api.get("/api/v1/connector-status"))
    assert statuses[0]["name"] == "hk-1" and statuses[0]["state"] == "disabled"
    removed = ok(api.delete("/api/v1/connectors/hk-1", params={"force": "true"}))
    assert removed["rules_removed"] == 1

    ok(api.post("/api/v1/blacklist", json={"number": "+85261234567", "note": "complaint"}), 201)
    ok(api.post("/api/v1/blacklist", json={"number": "85260000000", "customer": "acme"}), 201)
    assert len(ok(api.get("/api/v1/blacklist"))) == 2
    assert [e["number"] for e in ok(api.get("/api/v1/blacklist", params={"customer": "acme"}))] == [
        "85260000000"
    ]
    ok(api.delete("/api/v1/blacklist", params={"number": "85261234567"}))

    policy = ok(
        api.put("/api/v1/policies/82", json={"sender_format": "numeric", "note": "KR numeric"})
    )
    assert policy["region"] == "KR" and policy["sender_format"] == "numeric"
    assert any(p["country_code"] == 82 for p in ok(api.get("/api/v1/policies")))
    ok(api.delete("/api/v1/policies/82"))


def test_registrations_approval_queue(admin: Admin) -> None:
    api = admin.api
    ok(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    sig = ok(
        api.post("/api/v1/registrations/signatures", json={"customer": "acme", "text": "ACME"}), 201
    )
    tpl = ok(
        api.post(
            "/api/v1/registrations/templates",
            json={"customer": "acme", "text": "Your code is {code}", "country_code": "86"},
        ),
        201,
    )
    pending = ok(api.get("/api/v1/registrations/templates", params={"status": "pending"}))
    assert [r["id"] for r in pending] == [tpl["id"]] and pending[0]["country_code"] == 86
    approved = ok(api.post(f"/api/v1/registrations/templates/{tpl['id']}/approve", json={}))
    assert approved["status"] == "approved"
    rejected = ok(
        api.post(f"/api/v1/registrations/signatures/{sig['id']}/reject", json={"note": "no proof"})
    )
    assert rejected["status"] == "rejected" and rejected["note"] == "no proof"
    assert ok(api.get("/api/v1/registrations/templates", params={"status": "pending"})) == []


def test_message_search_lifecycle_and_stats(admin: Admin) -> None:
    from seed import seed_customer

    seeded = seed_customer(admin.store.engine, name="acme")
    seed_customer(admin.store.engine, name="other", route=seeded.route)
    admin.platform.wait_config(
        lambda: len(admin.platform.platform.config.current.snapshot.customers_by_key) == 2
    )
    with admin.client() as client:
        answer = send_sms(client, admin.uip_url, seeded.auth_key, seeded.route, 1,
                          ["852-67000011", "65-71234567"], "Your code is 1234")  # fmt: skip
    assert answer["RESULT_CODE"] == 1, answer
    uid, rejected_uid = (d["SMS_UID"] for d in answer["DETAIL_LIST"])
    api = admin.api
    found = ok(api.get("/api/v1/messages", params={"sms_uid": uid}))
    assert [m["sms_uid"] for m in found] == [uid]
    assert found[0]["customer"] == "acme" and found[0]["fee"] == "0.05"
    assert {m["sms_uid"] for m in ok(api.get("/api/v1/messages", params={"customer": "acme"}))} == {
        uid,
        rejected_uid,
    }
    by_number = ok(api.get("/api/v1/messages", params={"number": "+85267000011"}))
    assert [m["sms_uid"] for m in by_number] == [uid]
    assert ok(api.get("/api/v1/messages", params={"number": "67000011"}))[0]["sms_uid"] == uid
    assert (
        ok(api.get("/api/v1/messages", params={"state": "rejected"}))[0]["sms_uid"] == rejected_uid
    )
    assert ok(api.get("/api/v1/messages", params={"customer": "other"})) == []
    future = ok(api.get("/api/v1/messages", params={"since": "2999-01-01 00:00"}))
    assert future == []

    life = ok(api.get(f"/api/v1/messages/{rejected_uid}"))
    assert life["message"]["result_desc"] == "LOCAL_REJECTED"
    assert [r["result_desc"] for r in life["reports"]] == ["LOCAL_REJECTED"]
    assert api.get("/api/v1/messages/NOPE").status_code == 404

    summary = ok(api.get("/api/v1/stats/summary"))
    assert summary["accepted"] == 2 and summary["backlog"] == 1
    assert summary["by_state"] == {"accepted": 1, "rejected": 1}
    for by in ("state", "country", "connector", "customer"):
        series = ok(api.get("/api/v1/stats/series", params={"by": by, "bucket_s": 60}))
        assert sum(sum(v) for v in series["points"].values()) == 2, (by, series)
    by_country = ok(api.get("/api/v1/stats/series", params={"by": "country"}))["points"]
    assert sum(by_country["+852"]) == 1 and sum(by_country["+65"]) == 1
    by_customer = ok(api.get("/api/v1/stats/series", params={"by": "customer"}))["points"]
    assert list(by_customer) == ["acme"]


def test_openapi_describes_every_operation(admin: Admin) -> None:
    spec = admin.client().get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert ids == {op.id for op in OPERATIONS}
    create = spec["paths"]["/api/v1/customers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "name", "currency"
    ]  # fmt: skip
    assert spec["components"]["schemas"]["Error"]["required"] == ["ok", "error", "status"]
    # A DELETE's parameters: in the query string, or the same names as an optional JSON body.
    remove = spec["paths"]["/api/v1/customers/{name}/networks"]["delete"]
    assert [p["name"] for p in remove["parameters"] if p["in"] == "query"] == ["cidr"]
    assert remove["requestBody"]["required"] is False
    assert list(remove["requestBody"]["content"]["application/json"]["schema"]["properties"]) == [
        "cidr"
    ]


def test_whoami_and_token_use_is_recorded(admin: Admin) -> None:
    assert ok(admin.ro.get("/api/v1/whoami")) == {
        "name": "rita", "role": "readonly", "can_change": False
    }  # fmt: skip
    tokens = {t.name: t for t in admin.store.list_admin_tokens()}
    assert tokens["rita"].last_used_ms is not None and tokens["alice"].last_used_ms is None
    assert time.time() * 1000 - tokens["rita"].last_used_ms < 60_000
