"""Opt-out lists through the admin listener: the REST API, the console's customer page and the
customer's portal, each over HTTP against the running platform (its UIP endpoint answers
Intercept for a listed number within a second of the change)."""

from __future__ import annotations

from conftest import Admin, ok, send_sms
from helpers import csrf_of, login
from seed import seed_customer

from cloudsms.domain.codes import ResultCode


def _codes(answer: dict[str, object]) -> list[object]:
    return [d["RESULT_CODE"] for d in answer["DETAIL_LIST"]]  # type: ignore[attr-defined]


def _listed(admin: Admin, customer_id: int) -> frozenset[str]:
    snapshot = admin.platform.platform.config.current.snapshot
    found: frozenset[str] = snapshot.opt_outs_by_customer.get(customer_id, frozenset())
    return found


def test_admin_api_add_list_remove(admin: Admin) -> None:
    seeded = seed_customer(admin.store.engine, name="acme")
    api = admin.api
    added = ok(api.post("/api/v1/customers/acme/opt-outs", json={"number": "+85267000012"}), 201)
    assert added == {"customer": "acme", "number": "85267000012"}
    [entry] = ok(api.get("/api/v1/customers/acme/opt-outs"))
    assert entry["number"] == "85267000012" and entry["via"] == "operator"
    assert entry["customer"] == "acme" and entry["keyword"] is None
    assert admin.store.list_audit()[0].action == "opt_outs.add"

    # The running UIP endpoint refuses that recipient with Intercept.
    admin.platform.wait_config(lambda: "85267000012" in _listed(admin, seeded.customer_id))
    with admin.client() as client:
        answer = send_sms(client, admin.uip_url, seeded.auth_key, seeded.route, 1,
                          ["852-67000011", "852-67000012"], "hello")  # fmt: skip
    assert _codes(answer) == [ResultCode.OK, ResultCode.INTERCEPT]

    # Mistakes: one error shape with a readable message; a read-only token cannot change.
    dup = api.post("/api/v1/customers/acme/opt-outs", json={"number": "85267000012"})
    assert dup.status_code == 409 and "already on the opt-out list" in dup.json()["error"]
    bad = api.post("/api/v1/customers/acme/opt-outs", json={"number": "67-000012"})
    assert bad.status_code == 400 and "digits" in bad.json()["error"]
    ghost = api.get("/api/v1/customers/ghost/opt-outs")
    assert ghost.status_code == 404 and "no customer 'ghost'" in ghost.json()["error"]
    denied = admin.ro.post("/api/v1/customers/acme/opt-outs", json={"number": "85267000013"})
    assert denied.status_code == 403
    assert len(ok(admin.ro.get("/api/v1/customers/acme/opt-outs"))) == 1

    removed = ok(api.delete("/api/v1/customers/acme/opt-outs", params={"number": "85267000012"}))
    assert removed == {"customer": "acme", "number": "85267000012"}
    assert ok(api.get("/api/v1/customers/acme/opt-outs")) == []
    gone = api.delete("/api/v1/customers/acme/opt-outs", params={"number": "85267000012"})
    assert gone.status_code == 404 and "not on the opt-out list" in gone.json()["error"]


def test_console_customer_page_shows_and_edits_the_list(admin: Admin) -> None:
    seed_customer(admin.store.engine, name="acme")
    admin.store.add_opt_out("acme", "85261230000", via="keyword", keyword="退订")
    with admin.client() as web:
        csrf = csrf_of(login(web, "console", admin.admin_token).text)
        page = web.get("/console/customers/acme").text
        assert "Opt-out list" in page and "85261230000" in page and "退订" in page
        done = web.post(
            "/console/do/opt_outs.add",
            data={"csrf": csrf, "next": "/console/customers/acme", "path.name": "acme",
                  "number": "+85261239999"},
            follow_redirects=True,
        )  # fmt: skip
        assert done.status_code == 200 and "done:" in done.text and "85261239999" in done.text
        bad = web.post(
            "/console/do/opt_outs.add",
            data={"csrf": csrf, "next": "/console/customers/acme", "path.name": "acme",
                  "number": "85261239999"},
            follow_redirects=True,
        )  # fmt: skip
        assert "already on the opt-out list" in bad.text
        web.post(
            "/console/do/opt_outs.remove",
            data={"csrf": csrf, "next": "/console/customers/acme", "path.name": "acme",
                  "number": "85261230000"},
            follow_redirects=True,
        )  # fmt: skip
    assert [(o.number, o.via) for o in admin.store.list_opt_outs("acme")] == [
        ("85261239999", "operator")
    ]
    assert admin.store.list_audit()[0].actor == "token:alice"


def test_portal_customer_sees_and_edits_only_its_own_list(admin: Admin) -> None:
    a = seed_customer(admin.store.engine, name="acme")
    seed_customer(admin.store.engine, name="beta", route=a.route)
    admin.store.add_opt_out("acme", "85261230000", via="keyword", keyword="STOP")
    admin.store.add_opt_out("beta", "85269990000", via="keyword", keyword="TD")
    with admin.client() as web:
        home = login(web, "portal", a.auth_key)
        csrf = csrf_of(home.text)
        assert "/portal/opt-outs" in home.text
        page = web.get("/portal/opt-outs").text
        assert "+85261230000" in page and "85269990000" not in page

        added = web.post("/portal/opt-outs/add", data={"csrf": csrf, "number": "+85261231111"},
                         follow_redirects=True)  # fmt: skip
        assert "85261231111 added to your opt-out list" in added.text
        # A customer cannot reach another's list: the customer comes from the session.
        web.post("/portal/opt-outs/remove",
                 data={"csrf": csrf, "number": "85269990000", "customer": "beta"},
                 follow_redirects=True)  # fmt: skip
        refused = web.post("/portal/opt-outs/remove", data={"csrf": csrf, "number": "85261230000x"},
                           follow_redirects=True)  # fmt: skip
        assert "digits" in refused.text
        forged = web.post("/portal/opt-outs/add", data={"csrf": "forged", "number": "85261232222"},
                          follow_redirects=True)  # fmt: skip
        assert "CSRF" in forged.text
        web.post("/portal/opt-outs/remove", data={"csrf": csrf, "number": "85261230000"},
                 follow_redirects=True)  # fmt: skip
    assert [(o.number, o.via) for o in admin.store.list_opt_outs("acme")] == [
        ("85261231111", "customer")
    ]
    assert [o.number for o in admin.store.list_opt_outs("beta")] == ["85269990000"]
    assert admin.store.list_audit()[0].actor == "customer:acme"


def test_console_policies_page_sets_a_destinations_keywords(admin: Admin) -> None:
    with admin.client() as web:
        csrf = csrf_of(login(web, "console", admin.admin_token).text)
        form = {"csrf": csrf, "next": "/console/policies", "path.country_code": "86",
                "opt_out_keywords": "退订,取消", "opt_in_keywords": "", "note": ""}  # fmt: skip
        done = web.post("/console/do/policies.set", data=form, follow_redirects=True)
        assert done.status_code == 200 and "done:" in done.text and "退订,取消" in done.text
        policy = admin.store.get_policy(86)
        assert policy is not None and policy.opt_out_keywords == ("退订", "取消")
        assert policy.opt_in_keywords is None and policy.requires_template  # others unchanged
        bad = web.post("/console/do/policies.set", follow_redirects=True,
                       data={**form, "opt_out_keywords": "STOP NOW"})  # fmt: skip
        assert "single words" in bad.text
    via_api = ok(admin.api.put("/api/v1/policies/86", json={"opt_out_keywords": "none"}))
    assert via_api["opt_out_keywords"] is None
